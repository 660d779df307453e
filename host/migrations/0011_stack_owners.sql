-- Who may read or delete a stack. A team's stack (`fingerprint` = team:<id>) answers its
-- session or API key; an anonymous stack answers the stack token handed out at creation
-- (kept hashed) or the upgrade JWT of the resource it was made with. The slug is a public
-- handle (app URLs carry it), never a credential.
ALTER TABLE stacks ADD COLUMN secret_hash bytea, ADD COLUMN made_with uuid;
