use super::*;
use crate::checkpoint::MemoryOwnershipStore;

const MIN: Duration = Duration::from_secs(60);

fn parts(n: usize) -> Vec<String> {
    (0..n).map(|i| i.to_string()).collect()
}

fn rec(p: &str, owner: &str, age_s: i64, now: i64) -> Ownership {
    Ownership {
        partition: p.into(),
        owner_id: owner.into(),
        etag: Some(format!("e-{p}-{owner}")),
        last_modified_ns: now - age_s * 1_000_000_000,
    }
}

/// One instance's round against a shared store, as the service runs it.
async fn round(store: &MemoryOwnershipStore, key: &CheckpointKey, n: usize, me: &str) -> usize {
    let listed = store.list_ownership(key).await.unwrap();
    let now = azlog_mapper::deadletter::now_ns();
    let plan = plan_claims(&parts(n), &listed, me, now, MIN, &mut |k| {
        fastrand::usize(..k)
    });
    store.claim_ownership(key, plan).await.unwrap().len()
}

async fn counts(store: &MemoryOwnershipStore, key: &CheckpointKey) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for o in store.list_ownership(key).await.unwrap() {
        if !o.owner_id.is_empty() {
            *c.entry(o.owner_id).or_insert(0) += 1;
        }
    }
    c
}

#[test]
fn a_lone_instance_claims_one_unclaimed_partition_per_round() {
    let now = 1_000_000_000_000;
    let plan = plan_claims(&parts(4), &[], "a", now, MIN, &mut |_| 2);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].partition, "2");
    assert_eq!(plan[0].owner_id, "a");
    assert_eq!(
        plan[0].etag, None,
        "a first claim is conditional on no record"
    );

    // With two of its own: renews both, claims a third.
    let recs = vec![rec("0", "a", 1, now), rec("1", "a", 1, now)];
    let plan = plan_claims(&parts(4), &recs, "a", now, MIN, &mut |_| 0);
    let ps: Vec<&str> = plan.iter().map(|o| o.partition.as_str()).collect();
    assert_eq!(ps, ["0", "1", "2"]);
    assert_eq!(
        plan[0].etag.as_deref(),
        Some("e-0-a"),
        "renewals carry the ETag read"
    );
}

#[test]
fn expired_and_released_claims_are_claimable_active_ones_are_not() {
    let now = 1_000_000_000_000;
    let recs = vec![
        rec("0", "b", 5, now),   // active
        rec("1", "b", 120, now), // expired (older than a minute)
        rec("2", "", 1, now),    // released
        rec("3", "c", 5, now),   // active
    ];
    let mut seen = BTreeSet::new();
    for i in 0..2 {
        let plan = plan_claims(&parts(4), &recs, "a", now, MIN, &mut |_| i);
        assert_eq!(plan.len(), 1);
        seen.insert(plan[0].partition.clone());
        // The claim replaces the stale record: conditional on its ETag.
        assert!(plan[0].etag.is_some());
    }
    assert_eq!(seen, BTreeSet::from(["1".to_string(), "2".to_string()]));
}

#[test]
fn an_instance_at_its_share_claims_nothing_more() {
    let now = 1_000_000_000_000;
    // 4 partitions, owners a and b: max 2 each. a holds 2; "3" is unclaimed.
    let recs = vec![
        rec("0", "a", 1, now),
        rec("1", "a", 1, now),
        rec("2", "b", 1, now),
    ];
    let plan = plan_claims(&parts(4), &recs, "a", now, MIN, &mut |_| 0);
    assert_eq!(plan.len(), 2, "renewals only");
    // b (1 of max 2) takes the unclaimed one rather than stealing.
    let plan = plan_claims(&parts(4), &recs, "b", now, MIN, &mut |_| 0);
    let ps: Vec<&str> = plan.iter().map(|o| o.partition.as_str()).collect();
    assert_eq!(ps, ["2", "3"]);
}

#[test]
fn a_newcomer_steals_from_the_owner_holding_the_most() {
    let now = 1_000_000_000_000;
    let recs = vec![
        rec("0", "a", 1, now),
        rec("1", "a", 1, now),
        rec("2", "a", 1, now),
        rec("3", "b", 1, now),
        rec("4", "b", 1, now),
        rec("5", "c", 1, now),
    ];
    // d: 4 owners, 6 partitions → expected 1: steals one of a's.
    let plan = plan_claims(&parts(6), &recs, "d", now, MIN, &mut |_| 1);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].partition, "1");
    assert_eq!(plan[0].owner_id, "d");
    assert_eq!(plan[0].etag.as_deref(), Some("e-1-a"));
    // c among a, b, c: expected 2, max 2; c holds 1 and nothing is free: it renews its own
    // and steals from a, who holds 3.
    let plan = plan_claims(&parts(6), &recs, "c", now, MIN, &mut |_| 0);
    assert_eq!(plan.len(), 2);
    assert_eq!(plan[0].partition, "5");
    assert_eq!(
        plan[1].etag.as_deref().map(|e| e.ends_with("-a")),
        Some(true)
    );
}

#[test]
fn claims_of_partitions_the_hub_does_not_have_are_ignored() {
    let now = 1_000_000_000_000;
    let recs = vec![rec("7", "a", 1, now), rec("0", "b", 1, now)];
    let plan = plan_claims(&parts(2), &recs, "a", now, MIN, &mut |_| 0);
    let ps: Vec<&str> = plan.iter().map(|o| o.partition.as_str()).collect();
    // a owns nothing real; two owners, max 1: claims "1".
    assert_eq!(ps, ["1"]);
}

#[tokio::test]
async fn two_then_three_instances_converge_to_an_even_split_and_stay_there() {
    let store = MemoryOwnershipStore::new();
    let key = CheckpointKey::new("ns", "hub", "$Default");
    // a alone takes all 8, one per round.
    for _ in 0..8 {
        round(&store, &key, 8, "a").await;
    }
    assert_eq!(
        counts(&store, &key).await,
        BTreeMap::from([("a".into(), 8)])
    );
    // b joins: rounds interleave until 4/4.
    for _ in 0..12 {
        round(&store, &key, 8, "b").await;
        round(&store, &key, 8, "a").await;
    }
    assert_eq!(
        counts(&store, &key).await,
        BTreeMap::from([("a".into(), 4), ("b".into(), 4)])
    );
    // c joins: 3/3/2 in some order, then stable for many rounds (no partition moves).
    for _ in 0..12 {
        for me in ["c", "a", "b"] {
            round(&store, &key, 8, me).await;
        }
    }
    let settled = store.list_ownership(&key).await.unwrap();
    let mut sizes: Vec<usize> = counts(&store, &key).await.into_values().collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [2, 3, 3]);
    for _ in 0..10 {
        for me in ["a", "b", "c"] {
            round(&store, &key, 8, me).await;
        }
    }
    let owners = |l: &[Ownership]| {
        l.iter()
            .map(|o| (o.partition.clone(), o.owner_id.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        owners(&store.list_ownership(&key).await.unwrap()),
        owners(&settled),
        "a balanced split does not move"
    );
}
