//! The server-side assignors of KIP-848 consumer groups: `uniform` (the default) and `range`.
//! Each maps every partition of the topics the members subscribe to onto one of them; pure
//! functions of the members' subscriptions, the topics' partition counts and (for `uniform`)
//! the previous target assignment, so that a rebalance moves as little as it can.

use std::collections::{BTreeMap, BTreeSet};

/// Partitions by topic name.
pub type Assignment = BTreeMap<String, BTreeSet<i32>>;

pub use strata_api::group::ASSIGNORS;

/// What an assignor needs of one member.
#[derive(Debug, Clone, Default)]
pub struct MemberSpec {
    /// The topics it subscribes to that exist.
    pub topics: BTreeSet<String>,
    /// Its previous target assignment.
    pub previous: Assignment,
}

/// Runs `assignor` over `members` (by member id) for topics of `partitions` (name → count).
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, MemberSpec>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    match assignor {
        "range" => range(members, partitions),
        _ => uniform(members, partitions),
    }
}

/// Each topic's partitions in contiguous blocks over its subscribers in member id order, the
/// first `count % subscribers` taking one more (the classic range assignor, per topic).
fn range(
    members: &BTreeMap<String, MemberSpec>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for (topic, &count) in partitions {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, spec)| spec.topics.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let (base, extra) = (
            count as usize / subscribers.len(),
            count as usize % subscribers.len(),
        );
        let mut next = 0i32;
        for (i, member) in subscribers.into_iter().enumerate() {
            let take = base + usize::from(i < extra);
            if take > 0 {
                let set = out.entry(member.clone()).or_default();
                set.entry(topic.clone())
                    .or_default()
                    .extend(next..next + take as i32);
            }
            next += take as i32;
        }
    }
    out
}

/// Balanced first, sticky second: members keep the previous partitions they still subscribe
/// to, the rest go to the least loaded eligible member, then partitions move from the most to
/// the least loaded until no eligible member has two fewer than another.
fn uniform(
    members: &BTreeMap<String, MemberSpec>,
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Assignment> {
    let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
    let mut load: BTreeMap<&String, usize> = members.keys().map(|m| (m, 0)).collect();
    // Each topic's subscribers, and a fair share each, so that keeping cannot leave one
    // member overloaded.
    let subscribers: BTreeMap<&str, Vec<&String>> = partitions
        .keys()
        .map(|topic| {
            let ids = members
                .iter()
                .filter(|(_, spec)| spec.topics.contains(topic))
                .map(|(id, _)| id)
                .collect();
            (topic.as_str(), ids)
        })
        .collect();
    let eligible = |topic: &str| subscribers.get(topic).into_iter().flatten().copied();
    let total: usize = partitions
        .iter()
        .filter(|(topic, _)| eligible(topic).next().is_some())
        .map(|(_, &count)| count.max(0) as usize)
        .sum();
    let cap = total.div_ceil(members.len().max(1));
    for (id, spec) in members {
        for (topic, kept) in &spec.previous {
            let Some(&count) = partitions.get(topic) else {
                continue;
            };
            if !spec.topics.contains(topic) {
                continue;
            }
            for &p in kept.iter().filter(|p| **p < count) {
                if load[id] < cap && !owner.contains_key(&(topic.clone(), p)) {
                    owner.insert((topic.clone(), p), id.clone());
                    *load.get_mut(id).expect("member") += 1;
                }
            }
        }
    }
    for (topic, &count) in partitions {
        for p in 0..count {
            if owner.contains_key(&(topic.clone(), p)) {
                continue;
            }
            let Some(least) = eligible(topic).min_by_key(|id| (load[id], *id)) else {
                continue;
            };
            owner.insert((topic.clone(), p), least.clone());
            *load.get_mut(least).expect("member") += 1;
        }
    }
    // Moves toward balance; each strictly lowers the spread of two members, so it ends.
    let mut moved = true;
    while moved {
        moved = false;
        let candidates: Vec<((String, i32), String)> = owner
            .iter()
            .rev()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (partition, from) in candidates {
            let Some(to) = eligible(&partition.0)
                .filter(|id| load[id] + 1 < load[&from])
                .min_by_key(|id| (load[id], *id))
                .cloned()
            else {
                continue;
            };
            *load.get_mut(&from).expect("member") -= 1;
            *load.get_mut(&to).expect("member") += 1;
            owner.insert(partition, to);
            moved = true;
            break;
        }
    }
    let mut out: BTreeMap<String, Assignment> = members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect();
    for ((topic, p), id) in owner {
        out.entry(id)
            .or_default()
            .entry(topic)
            .or_default()
            .insert(p);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(topics: &[&str], previous: &[(&str, &[i32])]) -> MemberSpec {
        MemberSpec {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            previous: previous
                .iter()
                .map(|(t, ps)| (t.to_string(), ps.iter().copied().collect()))
                .collect(),
        }
    }

    fn counts(out: &BTreeMap<String, Assignment>) -> Vec<usize> {
        out.values()
            .map(|a| a.values().map(BTreeSet::len).sum())
            .collect()
    }

    fn topics(list: &[(&str, i32)]) -> BTreeMap<String, i32> {
        list.iter().map(|(t, n)| (t.to_string(), *n)).collect()
    }

    #[test]
    fn uniform_balances_and_keeps_what_it_can() {
        let partitions = topics(&[("t", 6)]);
        let mut members = BTreeMap::new();
        members.insert("a".to_owned(), spec(&["t"], &[("t", &[0, 1, 2, 3, 4, 5])]));
        let alone = assign("uniform", &members, &partitions);
        assert_eq!(counts(&alone), vec![6]);
        members.insert("b".to_owned(), spec(&["t"], &[]));
        let two = assign("uniform", &members, &partitions);
        assert_eq!(counts(&two), vec![3, 3]);
        assert!(
            two["a"]["t"].is_subset(&(0..6).collect()),
            "a keeps three of its own"
        );
        members.get_mut("a").unwrap().previous = two["a"].clone();
        members.get_mut("b").unwrap().previous = two["b"].clone();
        members.insert("c".to_owned(), spec(&["t"], &[]));
        let three = assign("uniform", &members, &partitions);
        assert_eq!(counts(&three), vec![2, 2, 2]);
        for m in ["a", "b"] {
            assert!(
                three[m]["t"].is_subset(&two[m]["t"]),
                "{m} only gives up partitions"
            );
        }
    }

    #[test]
    fn uniform_gives_each_topic_only_to_its_subscribers() {
        let partitions = topics(&[("x", 4), ("y", 2)]);
        let members: BTreeMap<String, MemberSpec> = [
            ("a".to_owned(), spec(&["x"], &[])),
            ("b".to_owned(), spec(&["x", "y"], &[])),
        ]
        .into();
        let out = assign("uniform", &members, &partitions);
        assert!(!out["a"].contains_key("y"));
        assert_eq!(out["b"]["y"].len(), 2);
        assert_eq!(counts(&out), vec![3, 3]);
    }

    #[test]
    fn range_splits_each_topic_in_blocks() {
        let partitions = topics(&[("t", 5)]);
        let members: BTreeMap<String, MemberSpec> = [
            ("a".to_owned(), spec(&["t"], &[])),
            ("b".to_owned(), spec(&["t"], &[])),
        ]
        .into();
        let out = assign("range", &members, &partitions);
        assert_eq!(out["a"]["t"], [0, 1, 2].into());
        assert_eq!(out["b"]["t"], [3, 4].into());
    }
}
