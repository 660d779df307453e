//! Caps on what one caller may hold and create: live resources per kind, provisions per UTC
//! day, and the recycle gate (an anonymous caller whose resources all ended must claim an
//! account before starting over). Pure decisions; the store runs them under a lock.

use uuid::Uuid;

use super::plans::Tier;

/// What a caller holds now, read inside the admission transaction.
#[derive(Debug, Default)]
pub struct Holdings {
    /// Live resources (pending, active, suspended), oldest first.
    pub live: Vec<LiveResource>,
    /// Provisions counted against today's cap (every attempt that did not fail).
    pub provisions_today: u64,
    /// Whether the caller had a resource that has since ended (expired or deleted).
    pub had_resources: bool,
}

#[derive(Debug, Clone)]
pub struct LiveResource {
    pub token: Uuid,
    pub kind: String,
    /// Its provider has answered (it is no longer pending).
    pub committed: bool,
}

/// The verdict on one provision.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admit,
    /// Over the daily cap: answer with this existing resource instead of a new one.
    ReturnExisting(Uuid),
    Deny(Denial),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    /// Every earlier resource ended; an anonymous caller must claim before starting over.
    RecycleRequiresClaim,
    /// Over the daily cap with nothing committed to hand back (a burst still in flight).
    ProvisionLimitReached { limit: u64 },
    /// Already holds the tier's number of live resources of this kind.
    ResourceCountLimit {
        kind: String,
        limit: u64,
        /// The oldest live one the caller may be shown (none when the tier allows none, or
        /// when the caller proved none of them).
        existing: Option<Uuid>,
    },
}

/// Which of the holdings may be named to the caller. A team's holdings are its own; an
/// anonymous caller's are its *network's*, and the network is a quota key, never an
/// identity: only the resources it proved it holds (their token or upgrade JWT) are named.
#[derive(Debug, Clone, Copy)]
pub enum Visible<'a> {
    All,
    Proven(&'a [Uuid]),
}

impl Visible<'_> {
    fn allows(self, token: Uuid) -> bool {
        match self {
            Self::All => true,
            Self::Proven(tokens) => tokens.contains(&token),
        }
    }
}

/// Decides one provision of `kind` by a caller on `tier`. `anonymous` callers are also
/// subject to the recycle gate. Only `visible` resources are handed back or named.
pub fn decide(
    tier: &Tier,
    anonymous: bool,
    kind: &str,
    holdings: &Holdings,
    visible: Visible<'_>,
) -> Admission {
    if anonymous && holdings.had_resources && holdings.live.is_empty() {
        return Admission::Deny(Denial::RecycleRequiresClaim);
    }
    if let Some(limit) = tier.provisions_per_day()
        && holdings.provisions_today >= limit
    {
        let committed = |r: &&LiveResource| r.committed && visible.allows(r.token);
        let existing = holdings
            .live
            .iter()
            .filter(committed)
            .find(|r| r.kind == kind)
            .or_else(|| holdings.live.iter().find(committed));
        return match existing {
            Some(resource) => Admission::ReturnExisting(resource.token),
            None => Admission::Deny(Denial::ProvisionLimitReached { limit }),
        };
    }
    if let Some(limit) = tier.resource_count_limit(kind) {
        let of_kind: Vec<&LiveResource> = holdings.live.iter().filter(|r| r.kind == kind).collect();
        if of_kind.len() as u64 >= limit {
            return Admission::Deny(Denial::ResourceCountLimit {
                kind: kind.to_string(),
                limit,
                existing: of_kind
                    .iter()
                    .find(|r| visible.allows(r.token))
                    .map(|r| r.token),
            });
        }
    }
    Admission::Admit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::plans::{ANONYMOUS, Plans};

    fn live(kind: &str, status: &str) -> LiveResource {
        LiveResource {
            token: Uuid::new_v4(),
            kind: kind.into(),
            committed: status != "pending",
        }
    }

    fn anonymous_decides(kind: &str, holdings: &Holdings) -> Admission {
        let plans = Plans::load(None).unwrap();
        decide(
            plans.tier(ANONYMOUS).unwrap(),
            true,
            kind,
            holdings,
            Visible::All,
        )
    }

    #[test]
    fn an_anonymous_caller_is_shown_only_what_it_proved() {
        let plans = Plans::load(None).unwrap();
        let (db, cache) = (live("db", "active"), live("cache", "active"));
        let mut holdings = Holdings {
            live: vec![db.clone(), cache.clone()],
            provisions_today: 1,
            had_resources: false,
        };
        let anonymous = |holdings: &Holdings, proven: &[Uuid]| {
            decide(
                plans.tier(ANONYMOUS).unwrap(),
                true,
                "db",
                holdings,
                Visible::Proven(proven),
            )
        };
        let refused = |existing| {
            Admission::Deny(Denial::ResourceCountLimit {
                kind: "db".into(),
                limit: 1,
                existing,
            })
        };
        assert_eq!(anonymous(&holdings, &[]), refused(None));
        assert_eq!(anonymous(&holdings, &[db.token]), refused(Some(db.token)));
        holdings.provisions_today = 5;
        assert_eq!(
            anonymous(&holdings, &[]),
            Admission::Deny(Denial::ProvisionLimitReached { limit: 5 })
        );
        assert_eq!(
            anonymous(&holdings, &[cache.token]),
            Admission::ReturnExisting(cache.token)
        );
    }

    #[test]
    fn first_provision_is_admitted() {
        assert_eq!(
            anonymous_decides("db", &Holdings::default()),
            Admission::Admit
        );
    }

    #[test]
    fn one_live_resource_per_kind() {
        let db = live("db", "active");
        let holdings = Holdings {
            live: vec![db.clone()],
            provisions_today: 1,
            had_resources: false,
        };
        assert_eq!(
            anonymous_decides("db", &holdings),
            Admission::Deny(Denial::ResourceCountLimit {
                kind: "db".into(),
                limit: 1,
                existing: Some(db.token)
            })
        );
        assert_eq!(anonymous_decides("vector", &holdings), Admission::Admit);
    }

    #[test]
    fn over_the_daily_cap_the_same_kind_comes_back_first() {
        let (db, cache) = (live("db", "active"), live("cache", "active"));
        let holdings = Holdings {
            live: vec![cache.clone(), db.clone(), live("vector", "pending")],
            provisions_today: 5,
            had_resources: false,
        };
        assert_eq!(
            anonymous_decides("db", &holdings),
            Admission::ReturnExisting(db.token)
        );
        assert_eq!(
            anonymous_decides("queue", &holdings),
            Admission::ReturnExisting(cache.token)
        );
        let burst = Holdings {
            live: vec![live("db", "pending")],
            provisions_today: 5,
            had_resources: false,
        };
        assert_eq!(
            anonymous_decides("db", &burst),
            Admission::Deny(Denial::ProvisionLimitReached { limit: 5 })
        );
    }

    #[test]
    fn an_emptied_fingerprint_must_claim() {
        let holdings = Holdings {
            live: vec![],
            provisions_today: 0,
            had_resources: true,
        };
        assert_eq!(
            anonymous_decides("db", &holdings),
            Admission::Deny(Denial::RecycleRequiresClaim)
        );
    }
}
