//! Tiers and what each grants, read from `plans.yaml`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The tier of callers without an account.
pub const ANONYMOUS: &str = "anonymous";
/// The tier of a team that claimed its resources but pays nothing.
pub const FREE: &str = "free";

/// Every tier a plans file must define, lowest rank first.
pub const TIERS: [&str; 7] = [
    ANONYMOUS,
    "free",
    "hobby",
    "hobby_plus",
    "pro",
    "growth",
    "team",
];

/// The plans compiled into the binary; an operator's file replaces them.
const BUILT_IN: &str = include_str!("../../plans.yaml");

/// Value meaning "no limit" in the plans file.
const UNLIMITED: i64 = -1;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlansFile {
    tiers: BTreeMap<String, Tier>,
}

/// One tier as the plans file states it (and `/api/v1/capabilities` shows it).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub display_name: String,
    pub rank: u32,
    pub price_usd_monthly: u32,
    pub provisions_per_day: i64,
    pub ttl_hours: u32,
    /// Lifetime of a new stack's services; absent or `0`: stacks do not expire.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub stack_ttl_hours: u32,
    /// Whether apps may be private (`private=true` with `allowed_ips`).
    #[serde(default)]
    pub private_deploys: bool,
    /// Vault entries (names across envs) a team may keep; absent: no vault.
    #[serde(default)]
    pub vault_max_entries: i64,
    /// The envs a team's vault may hold; `*` for any.
    #[serde(default)]
    pub vault_envs: Vec<String>,
    /// Custom domains a team may bring for its apps; absent or 0: none.
    #[serde(default)]
    pub custom_domains_max: i64,
    pub resource_count_limit: BTreeMap<String, i64>,
    pub limits: BTreeMap<String, BTreeMap<String, i64>>,
}

/// The validated plans, by tier name.
#[derive(Debug)]
pub struct Plans {
    tiers: BTreeMap<String, Tier>,
}

impl Plans {
    /// Reads `path`, or the built-in plans when none is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read plans file {}", path.display()))?;
                Self::parse(&text).with_context(|| format!("invalid plans file {}", path.display()))
            }
            None => Self::parse(BUILT_IN).context("invalid built-in plans"),
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: PlansFile = yaml_serde::from_str(text)?;
        validate(&file.tiers)?;
        Ok(Self { tiers: file.tiers })
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.get(name)
    }

    /// Whether `name` is a tier people pay for.
    pub fn is_paid(&self, name: &str) -> bool {
        self.tier(name)
            .is_some_and(|tier| tier.price_usd_monthly > 0)
    }

    /// Every tier, lowest rank first.
    pub fn by_rank(&self) -> Vec<(&str, &Tier)> {
        let mut tiers: Vec<_> = self.tiers.iter().map(|(k, v)| (k.as_str(), v)).collect();
        tiers.sort_by_key(|(_, t)| t.rank);
        tiers
    }
}

impl Tier {
    /// The limits a provider enforces for one resource of `kind` (unlimited ones omitted).
    pub fn limits_for(&self, kind: &str) -> Vec<(String, u64)> {
        self.limits
            .get(kind)
            .into_iter()
            .flatten()
            .filter_map(|(name, value)| Some((name.clone(), u64::try_from(*value).ok()?)))
            .collect()
    }

    /// How many live resources of `kind` a caller may hold; `None` is unlimited.
    pub fn resource_count_limit(&self, kind: &str) -> Option<u64> {
        let value = self
            .resource_count_limit
            .get(kind)
            .or_else(|| self.resource_count_limit.get("default"))
            .copied()
            .unwrap_or(UNLIMITED);
        u64::try_from(value).ok()
    }

    /// Provisions per UTC day; `None` is unlimited.
    pub fn provisions_per_day(&self) -> Option<u64> {
        u64::try_from(self.provisions_per_day).ok()
    }

    /// How long a new resource lives; `None` means it does not expire.
    pub fn ttl(&self) -> Option<Duration> {
        hours(self.ttl_hours)
    }

    /// Whether the tier's vault may hold entries of `env`.
    pub fn vault_env_allowed(&self, env: &str) -> bool {
        self.vault_envs
            .iter()
            .any(|allowed| allowed == "*" || allowed == env)
    }

    /// How long a new stack lives; `None` means it does not expire.
    pub fn stack_ttl(&self) -> Option<Duration> {
        hours(self.stack_ttl_hours)
    }
}

fn hours(count: u32) -> Option<Duration> {
    (count > 0).then(|| Duration::from_secs(u64::from(count) * 3600))
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

fn validate(tiers: &BTreeMap<String, Tier>) -> anyhow::Result<()> {
    for name in TIERS {
        if !tiers.contains_key(name) {
            bail!("tier `{name}` is missing");
        }
    }
    let mut ranks = BTreeMap::new();
    for (name, tier) in tiers {
        if let Some(other) = ranks.insert(tier.rank, name) {
            bail!("tiers `{other}` and `{name}` share rank {}", tier.rank);
        }
        let check = |what: &str, value: i64| {
            if value < UNLIMITED {
                bail!("tier `{name}`: {what} is {value}; use a count, or -1 for unlimited");
            }
            Ok(())
        };
        check("provisions_per_day", tier.provisions_per_day)?;
        for (kind, value) in &tier.resource_count_limit {
            check(&format!("resource_count_limit.{kind}"), *value)?;
        }
        for (kind, limits) in &tier.limits {
            for (limit, value) in limits {
                check(&format!("limits.{kind}.{limit}"), *value)?;
            }
        }
    }
    let rank_of = |name: &str| tiers[name].rank;
    if TIERS.windows(2).any(|w| rank_of(w[0]) >= rank_of(w[1])) {
        bail!("tier ranks must rise in the order {}", TIERS.join(" < "));
    }
    if tiers[ANONYMOUS].ttl().is_none() {
        bail!("tier `anonymous` must have a ttl_hours above 0");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_plans_are_valid() {
        let plans = Plans::load(None).unwrap();
        let anonymous = plans.tier(ANONYMOUS).unwrap();
        assert_eq!(
            anonymous.limits_for("db"),
            vec![("connections".into(), 2), ("storage_mb".into(), 10)]
        );
        assert_eq!(anonymous.resource_count_limit("db"), Some(1));
        assert_eq!(anonymous.provisions_per_day(), Some(5));
        assert_eq!(anonymous.ttl(), Some(Duration::from_secs(86_400)));
        let pro = plans.tier("pro").unwrap();
        assert_eq!(pro.resource_count_limit("cache"), Some(3));
        assert_eq!(pro.resource_count_limit("db"), Some(5));
        assert_eq!(pro.provisions_per_day(), None);
        assert_eq!(plans.tier("team").unwrap().resource_count_limit("db"), None);
        let order: Vec<_> = plans.by_rank().into_iter().map(|(n, _)| n).collect();
        assert_eq!(order, TIERS);
    }

    #[test]
    fn broken_plans_are_refused() {
        let without_team = BUILT_IN.replace("  team:", "  teams:");
        let e = Plans::parse(&without_team).unwrap_err().to_string();
        assert!(e.contains("tier `team` is missing"), "{e}");
        let negative = BUILT_IN.replacen("provisions_per_day: 5", "provisions_per_day: -3", 1);
        let e = Plans::parse(&negative).unwrap_err().to_string();
        assert!(e.contains("provisions_per_day is -3"), "{e}");
        let typo = BUILT_IN.replacen("ttl_hours: 24", "ttl_hour: 24", 1);
        assert!(Plans::parse(&typo).is_err());
    }
}
