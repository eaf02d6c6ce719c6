//! Validation of a `shards` router: its shards (existing components, each once, not the
//! router), its strategy and the fields that apply only to some strategies, a range table
//! (contiguous from key 0: no gap, no overlap), and its changes (in time order, within the
//! run, adding what is not a shard yet, removing what is, never the last shard), resolved
//! to a [`ShardsDef`].

use super::placement::{Hash, Placement, Ring, ShardIndex};
use super::{By, Change, ChangeKind, Shard, ShardsDef};
use crate::error::{Errors, index, join};
use crate::model::graph::{Link, LinkKind};
use crate::model::resolve::Resolver;
use crate::model::spec::*;
use crate::time::{SimTime, format_duration_nanos};

/// Most points (virtual nodes) per shard on a ring.
pub const MAX_VNODES: u32 = 10_000;
/// Most points on a ring in all (shards × virtual nodes).
pub const MAX_RING_POINTS: u64 = 1_000_000;
/// Virtual nodes per shard when not given.
pub const DEFAULT_VNODES: u32 = 100;

/// Validates router `s` at `path`, component number `me` of the model.
pub fn shards(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    s: &ShardsSpec,
) -> Option<ShardsDef> {
    let strategy = s.strategy.clone().unwrap_or(StrategySpec::HashMod);
    let mut v = Validator {
        r,
        errs,
        path,
        me,
        shards: Vec::new(),
        found: 0,
    };
    let placement = v.initial(s, &strategy);
    let changes = v.changes(s, &strategy, placement.as_ref());
    let Validator { shards, found, .. } = v;
    if found > 0 {
        return None;
    }
    let placement = placement?;
    let n = shards.len() as f64;
    let link_path = if s.shards.is_some() {
        join(path, "shards")
    } else {
        join(path, "strategy.ranges")
    };
    let links = vec![Link {
        class: None,
        kind: LinkKind::Route,
        targets: shards.iter().map(|x| (x.group as usize, 1.0 / n)).collect(),
        path: link_path,
    }];
    Some(
        ShardsDef::new(
            shards,
            placement,
            changes,
            match s.by {
                Some(BySpec::Client) => By::Client,
                _ => By::Key,
            },
            links,
        )
        .watching(r.faults),
    )
}

/// The walk over one router's fields, collecting every shard it ever has.
struct Validator<'a, 'r> {
    r: &'a Resolver<'r>,
    errs: &'a mut Errors,
    path: &'a str,
    me: usize,
    shards: Vec<Shard>,
    /// Errors found so far.
    found: usize,
}

impl Validator<'_, '_> {
    /// Records an error at `path`.
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.found += 1;
        self.errs.push(path, message);
    }

    /// The value of `r`, or `None` with its error recorded.
    fn take<T>(&mut self, r: Result<T, crate::error::ModelError>) -> Option<T> {
        if r.is_err() {
            self.found += 1;
        }
        self.errs.take(r)
    }

    /// The shard index of component `name` (at `at`), added to the list on first sight;
    /// `None` (with an error) for an unknown component or the router itself.
    fn shard(&mut self, at: &str, name: &str) -> Option<ShardIndex> {
        if let Some(i) = self.shards.iter().position(|x| x.name == name) {
            return Some(i as ShardIndex);
        }
        let g = self.take(self.r.group(at, name))?;
        if g as usize == self.me {
            self.push(
                at,
                format!("a shard router cannot be its own shard (\"{name}\")"),
            );
            return None;
        }
        self.shards.push(Shard {
            name: name.to_string(),
            group: g,
        });
        Some(self.shards.len() as ShardIndex - 1)
    }

    /// The placement at the start of the run.
    fn initial(&mut self, s: &ShardsSpec, strategy: &StrategySpec) -> Option<Placement> {
        let path = self.path;
        let is_hash_mod = matches!(strategy, StrategySpec::HashMod);
        if s.hash.is_some() && !is_hash_mod {
            self.push(
                join(path, "hash"),
                "\"hash\" applies only with \"strategy\": \"hash_mod\"",
            );
        }
        let listed = self.listed(s);
        if let StrategySpec::Ranges(table) = strategy {
            let p = join(path, "strategy.ranges");
            let placement = self.ranges(&p, table)?;
            if let Some(listed) = &listed {
                let owners = placement.members();
                for (i, x) in listed.iter().enumerate() {
                    if !owners.contains(x) {
                        let name = &self.shards[*x as usize].name;
                        self.push(
                            index(&join(path, "shards"), i),
                            format!("shard \"{name}\" owns no range of \"strategy.ranges\""),
                        );
                    }
                }
            }
            return Some(placement);
        }
        let Some(members) = listed else {
            self.push(
                join(path, "shards"),
                "missing: the components to spread keys over, e.g. [\"db0\", \"db1\"]",
            );
            return None;
        };
        if members.is_empty() {
            return None;
        }
        match strategy {
            StrategySpec::HashMod => Some(Placement::HashMod {
                hash: match s.hash {
                    Some(HashSpec::Identity) => Hash::Identity,
                    _ => Hash::Mix,
                },
                members,
            }),
            StrategySpec::Consistent(c) => {
                let vnodes = self.vnodes(c, members.len())?;
                let named: Vec<(ShardIndex, &str)> = members
                    .iter()
                    .map(|m| (*m, self.shards[*m as usize].name.as_str()))
                    .collect();
                Some(Placement::Ring(Ring::new(
                    vnodes,
                    c.seed.unwrap_or(0),
                    &named,
                )))
            }
            StrategySpec::Ranges(_) => None,
        }
    }

    /// The shards listed in `shards`, each once; `None` when not given.
    fn listed(&mut self, s: &ShardsSpec) -> Option<Vec<ShardIndex>> {
        let names = s.shards.as_ref()?;
        let p = join(self.path, "shards");
        if names.is_empty() {
            self.push(&p, "a shard router needs at least one shard");
        }
        let mut members = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let at = index(&p, i);
            if names[..i].contains(name) {
                self.push(at, format!("shard \"{name}\" is listed twice"));
                continue;
            }
            if let Some(x) = self.shard(&at, name) {
                members.push(x);
            }
        }
        Some(members)
    }

    /// Points per shard of a ring: between 1 and [`MAX_VNODES`], and at most
    /// [`MAX_RING_POINTS`] in all; `None` (and an error) otherwise, so that no ring beyond
    /// the limit is built only to be refused.
    fn vnodes(&mut self, c: &ConsistentSpec, shards: usize) -> Option<u32> {
        let p = join(self.path, "strategy.consistent.vnodes");
        let v = c.vnodes.unwrap_or(DEFAULT_VNODES);
        if v == 0 || v > MAX_VNODES {
            self.push(p, format!("must be between 1 and {MAX_VNODES}, got {v}"));
            return None;
        }
        let points = u64::from(v) * shards as u64;
        if points > MAX_RING_POINTS {
            self.push(
                p,
                format!(
                    "{v} points for each of {shards} shards make {points} ring points, more than the {MAX_RING_POINTS} allowed"
                ),
            );
            return None;
        }
        Some(v)
    }

    /// A range table at `p`: contiguous from key 0, each range non-empty, only the last
    /// open-ended.
    fn ranges(&mut self, p: &str, table: &[RangeSpec]) -> Option<Placement> {
        if table.is_empty() {
            self.push(p, "a range table needs at least one range, from key 0");
            return None;
        }
        let before = self.found;
        let (mut starts, mut owners) = (Vec::new(), Vec::new());
        let mut expect = 0u64;
        for (i, range) in table.iter().enumerate() {
            let at = index(p, i);
            let owner = self.shard(&join(&at, "shard"), &range.shard);
            if range.from != expect {
                let what = if i == 0 {
                    format!("the first range must start at key 0, got {}", range.from)
                } else if range.from > expect {
                    format!(
                        "gap: keys {expect} to {} belong to no range (the previous range ends at {expect})",
                        range.from - 1
                    )
                } else {
                    format!(
                        "overlap: starts at {} but the previous range ends at {expect}, so keys {} to {} would have two shards",
                        range.from,
                        range.from,
                        expect - 1
                    )
                };
                self.push(join(&at, "from"), what);
            }
            match range.to {
                Some(to) if to <= range.from => {
                    self.push(
                        join(&at, "to"),
                        format!(
                            "must be above \"from\" ({}), got {to}: a range holds at least one key",
                            range.from
                        ),
                    );
                }
                Some(to) => expect = to,
                None if i + 1 < table.len() => {
                    // Reported once: the next range's start is taken as this one's end.
                    expect = table[i + 1].from;
                    self.push(
                        join(&at, "to"),
                        "missing: only the last range may leave \"to\" out (it then takes every larger key)",
                    );
                }
                None => {}
            }
            starts.push(range.from);
            owners.push(owner.unwrap_or(0));
        }
        if self.found > before {
            return None;
        }
        Some(Placement::Ranges {
            starts,
            owners,
            end: table.last().and_then(|x| x.to),
        })
    }

    /// The changes, in time order, applied one after the other to `initial` to check
    /// that each adds what is not a shard and removes what is.
    fn changes(
        &mut self,
        s: &ShardsSpec,
        strategy: &StrategySpec,
        initial: Option<&Placement>,
    ) -> Vec<Change> {
        let Some(list) = &s.changes else {
            return Vec::new();
        };
        let p = join(self.path, "changes");
        let is_ranges = matches!(strategy, StrategySpec::Ranges(_));
        let mut current = initial.cloned();
        let mut last_at = 0u64;
        let mut out = Vec::new();
        for (i, c) in list.iter().enumerate() {
            let at = index(&p, i);
            let when = c.at.to_sim();
            let duration = self.r.duration;
            if duration.0 > 0 && when.0 >= duration.0 {
                self.push(
                    join(&at, "at"),
                    format!(
                        "\"{}\" is not within the run (duration \"{}\")",
                        format_duration_nanos(c.at.nanos()),
                        format_duration_nanos(duration.0 as f64)
                    ),
                );
            }
            if when.0 < last_at {
                self.push(
                    join(&at, "at"),
                    format!(
                        "changes must be in time order: \"{}\" comes before the previous change (\"{}\")",
                        format_duration_nanos(c.at.nanos()),
                        format_duration_nanos(last_at as f64)
                    ),
                );
            }
            last_at = last_at.max(when.0);
            let given = [c.add.is_some(), c.remove.is_some(), c.ranges.is_some()];
            if given.iter().filter(|g| **g).count() != 1 {
                self.push(
                    &at,
                    if is_ranges {
                        "a change of a range table gives the new \"ranges\""
                    } else {
                        "a change needs exactly one of \"add\" or \"remove\""
                    },
                );
                continue;
            }
            let kind = if is_ranges {
                self.range_change(&at, c)
            } else {
                self.hash_change(&at, c, current.as_ref())
            };
            let Some(kind) = kind else {
                current = None;
                continue;
            };
            current = current.map(|p| kind.apply(&p, &self.shards));
            out.push(Change {
                at: SimTime(when.0),
                kind,
            });
        }
        out
    }

    /// A change of a range table: the new table.
    fn range_change(&mut self, at: &str, c: &ChangeSpec) -> Option<ChangeKind> {
        let Some(table) = &c.ranges else {
            self.push(
                at,
                "with \"strategy\": {\"ranges\": ...} a change gives the new \"ranges\", not \"add\" or \"remove\"",
            );
            return None;
        };
        self.ranges(&join(at, "ranges"), table)
            .map(ChangeKind::Ranges)
    }

    /// Adding or removing a shard, checked against the placement before it.
    fn hash_change(
        &mut self,
        at: &str,
        c: &ChangeSpec,
        current: Option<&Placement>,
    ) -> Option<ChangeKind> {
        if c.ranges.is_some() {
            self.push(
                join(at, "ranges"),
                "\"ranges\" applies only with \"strategy\": {\"ranges\": ...}; add or remove a shard instead",
            );
            return None;
        }
        let members = current.map(Placement::members);
        if let Some(name) = &c.add {
            let p = join(at, "add");
            let x = self.shard(&p, name)?;
            if members.as_ref().is_some_and(|m| m.contains(&x)) {
                self.push(p, format!("\"{name}\" is already a shard at that time"));
                return None;
            }
            return Some(ChangeKind::Add(x));
        }
        let name = c.remove.as_ref()?;
        let p = join(at, "remove");
        let Some(x) = self.shards.iter().position(|s| &s.name == name) else {
            self.take(self.r.group(&p, name))?;
            self.push(p, format!("\"{name}\" is not a shard at that time"));
            return None;
        };
        let x = x as ShardIndex;
        match &members {
            Some(m) if !m.contains(&x) => {
                self.push(p, format!("\"{name}\" is not a shard at that time"));
                None
            }
            Some(m) if m.len() == 1 => {
                self.push(
                    p,
                    format!(
                        "removing \"{name}\" would leave no shard: a router needs at least one"
                    ),
                );
                None
            }
            _ => Some(ChangeKind::Remove(x)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::graph::LinkKind;
    use crate::model::{Format, Model, parse_model_str};

    fn model(router: &str) -> Result<Model, Vec<(String, String)>> {
        let text = format!(
            r#"{{"duration": "10s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "r",
                                     "keys": {{"uniform": {{"keys": 1000}}}}}}}},
                "components": {{"r": {router},
                               "a": {{"kind": "service", "service_time": {{"constant": "1ms"}}}},
                               "b": {{"kind": "service", "service_time": {{"constant": "1ms"}}}},
                               "c": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        parse_model_str(&text, Format::Json, std::path::Path::new("."), &[])
            .map_err(|errs| errs.into_iter().map(|e| (e.path, e.message)).collect())
    }

    fn error(router: &str) -> (String, String) {
        let e = model(router).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].clone()
    }

    #[test]
    fn shards_must_exist_once_and_not_be_the_router() {
        let (p, m) = error(r#"{"kind": "shards", "shards": ["a", "bb"]}"#);
        assert_eq!(p, "components.r.shards[1]");
        assert!(
            m.contains("no component named \"bb\"") && m.contains("\"b\""),
            "{m}"
        );
        let (p, m) = error(r#"{"kind": "shards", "shards": ["a", "b", "a"]}"#);
        assert_eq!(
            (p.as_str(), m.as_str()),
            ("components.r.shards[2]", "shard \"a\" is listed twice")
        );
        let (p, m) = error(r#"{"kind": "shards", "shards": ["a", "r"]}"#);
        assert_eq!(p, "components.r.shards[1]");
        assert!(m.contains("its own shard"), "{m}");
        let (p, m) = error(r#"{"kind": "shards", "shards": []}"#);
        assert_eq!(p, "components.r.shards");
        assert!(m.contains("at least one shard"), "{m}");
        let (p, _) = error(r#"{"kind": "shards"}"#);
        assert_eq!(p, "components.r.shards");
    }

    #[test]
    fn strategies_and_their_fields() {
        let (p, m) = error(r#"{"kind": "shards", "shards": ["a"], "strategy": "modulo"}"#);
        assert_eq!(p, "components.r.strategy");
        assert!(
            m.contains("hash_mod") && m.contains("consistent") && m.contains("ranges"),
            "{m}"
        );
        let (p, m) = error(
            r#"{"kind": "shards", "shards": ["a"], "strategy": {"consistent": {}}, "hash": "identity"}"#,
        );
        assert_eq!(p, "components.r.hash");
        assert!(m.contains("\"hash_mod\""), "{m}");
        let (p, m) = error(
            r#"{"kind": "shards", "shards": ["a"], "strategy": {"consistent": {"vnodes": 0}}}"#,
        );
        assert_eq!(p, "components.r.strategy.consistent.vnodes");
        assert!(m.contains("between 1 and 10000, got 0"), "{m}");
        let m = model(r#"{"kind": "shards", "shards": ["a", "b"], "strategy": {"consistent": {"vnodes": 10}}}"#)
            .unwrap();
        let link = &m.graph.links(0)[0];
        assert_eq!(link.kind, LinkKind::Route);
        assert_eq!(link.targets, [(1, 0.5), (2, 0.5)]);
        assert_eq!(link.path, "components.r.shards");
    }

    #[test]
    fn a_range_table_has_no_gap_no_overlap_and_starts_at_zero() {
        let ranges = |t: &str| format!(r#"{{"kind": "shards", "strategy": {{"ranges": {t}}}}}"#);
        let (p, m) = error(&ranges(
            r#"[{"shard": "a", "from": 0, "to": 100}, {"shard": "b", "from": 120}]"#,
        ));
        assert_eq!(p, "components.r.strategy.ranges[1].from");
        assert!(
            m.starts_with("gap: keys 100 to 119 belong to no range"),
            "{m}"
        );
        let (p, m) = error(&ranges(
            r#"[{"shard": "a", "from": 0, "to": 100}, {"shard": "b", "from": 90}]"#,
        ));
        assert_eq!(p, "components.r.strategy.ranges[1].from");
        assert!(m.starts_with("overlap: starts at 90"), "{m}");
        let (p, _) = error(&ranges(r#"[{"shard": "a", "from": 5}]"#));
        assert_eq!(p, "components.r.strategy.ranges[0].from");
        let (p, m) = error(&ranges(
            r#"[{"shard": "a", "from": 0}, {"shard": "b", "from": 100}]"#,
        ));
        assert_eq!(p, "components.r.strategy.ranges[0].to");
        assert!(m.contains("only the last range"), "{m}");
        let (p, _) = error(&ranges(r#"[{"shard": "a", "from": 0, "to": 0}]"#));
        assert_eq!(p, "components.r.strategy.ranges[0].to");
        let (p, m) = error(&ranges(r#"[{"shard": "x", "from": 0}]"#));
        assert_eq!(p, "components.r.strategy.ranges[0].shard");
        assert!(m.contains("no component named \"x\""), "{m}");
        let (p, m) = error(
            r#"{"kind": "shards", "shards": ["a", "b"], "strategy": {"ranges": [{"shard": "a", "from": 0}]}}"#,
        );
        assert_eq!(p, "components.r.shards[1]");
        assert!(m.contains("owns no range"), "{m}");
        let m = model(&ranges(
            r#"[{"shard": "b", "from": 0, "to": 100}, {"shard": "a", "from": 100}]"#,
        ))
        .unwrap();
        let link = &m.graph.links(0)[0];
        assert_eq!(link.path, "components.r.strategy.ranges");
        assert_eq!(link.targets, [(2, 0.5), (1, 0.5)]);
    }

    #[test]
    fn changes_are_in_the_run_in_order_and_keep_a_shard() {
        let with = |changes: &str| {
            format!(r#"{{"kind": "shards", "shards": ["a", "b"], "changes": {changes}}}"#)
        };
        let (p, m) = error(&with(r#"[{"at": "10s", "add": "c"}]"#));
        assert_eq!(p, "components.r.changes[0].at");
        assert!(m.contains("not within the run (duration \"10s\")"), "{m}");
        let (p, m) = error(&with(
            r#"[{"at": "5s", "add": "c"}, {"at": "2s", "remove": "c"}]"#,
        ));
        assert_eq!(p, "components.r.changes[1].at");
        assert!(m.contains("time order"), "{m}");
        let (p, m) = error(&with(r#"[{"at": "5s", "add": "b"}]"#));
        assert_eq!(p, "components.r.changes[0].add");
        assert!(m.contains("already a shard"), "{m}");
        let (p, m) = error(&with(r#"[{"at": "5s", "remove": "c"}]"#));
        assert_eq!(p, "components.r.changes[0].remove");
        assert!(m.contains("not a shard at that time"), "{m}");
        let (p, m) = error(&with(
            r#"[{"at": "1s", "remove": "a"}, {"at": "2s", "remove": "b"}]"#,
        ));
        assert_eq!(p, "components.r.changes[1].remove");
        assert!(m.contains("would leave no shard"), "{m}");
        let (p, m) = error(&with(r#"[{"at": "1s", "add": "c", "remove": "a"}]"#));
        assert_eq!(p, "components.r.changes[0]");
        assert!(m.contains("exactly one"), "{m}");
        let (p, m) = error(&with(r#"[{"at": "1s", "add": "zz"}]"#));
        assert_eq!(p, "components.r.changes[0].add");
        assert!(m.contains("no component named \"zz\""), "{m}");
        let (p, _) = error(&with(
            r#"[{"at": "1s", "ranges": [{"shard": "a", "from": 0}]}]"#,
        ));
        assert_eq!(p, "components.r.changes[0].ranges");
        // Removed, then added back: one shard, two changes; the link covers every shard.
        let m = model(&with(
            r#"[{"at": "1s", "add": "c"}, {"at": "2s", "remove": "a"}, {"at": "3s", "add": "a"}]"#,
        ))
        .unwrap();
        assert_eq!(m.graph.links(0)[0].targets.len(), 3);
        let ranges = r#"{"kind": "shards", "strategy": {"ranges": [{"shard": "a", "from": 0}]},
                         "changes": [{"at": "1s", "add": "b"}]}"#;
        let (p, m) = error(ranges);
        assert_eq!(p, "components.r.changes[0]");
        assert!(m.contains("new \"ranges\""), "{m}");
    }
}
