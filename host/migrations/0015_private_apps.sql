-- A private app answers only these addresses and networks (CIDRs); NULL: everyone.
ALTER TABLE deployments ADD COLUMN allowed_ips text[];
