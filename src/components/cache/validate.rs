//! Validation of a `cache`: its capacity, eviction policy, time to live, times, backend and
//! write policy, resolved to a [`CacheDef`]. A call cycle through `on_miss` (a backend that
//! calls the cache back) is found by the model's cycle check; a cache reading through to
//! itself is refused here.

use super::spec::{CacheSpec, EvictionSpec, WritePolicySpec};
use super::store::Eviction;
use super::{CacheDef, WritePolicy};
use crate::distributions::Distribution;
use crate::error::{Errors, join, num};
use crate::model::graph::{Link, LinkKind};
use crate::model::resolve::{Resolver, dist};

/// Most keys an instance may hold (each costs about 60 bytes when held).
pub const MAX_CAPACITY: u64 = 1_000_000_000;
/// Default share of an SLRU cache in its protected segment.
pub const DEFAULT_PROTECTED: f64 = 0.8;
/// Default write-back delay, ns (1 s).
pub const DEFAULT_FLUSH_AFTER_NS: u64 = 1_000_000_000;

/// Validates cache `c` at `path`, component number `me` of the model.
pub fn cache(
    r: &Resolver,
    errs: &mut Errors,
    path: &str,
    me: usize,
    c: &CacheSpec,
) -> Option<CacheDef> {
    let capacity = capacity(errs, path, c.capacity);
    let eviction = eviction(errs, path, c, capacity);
    let (ttl_ns, ttl_refresh) = ttl(errs, path, c);
    let hit_time = match &c.hit_time {
        Some(d) => dist(errs, &join(path, "hit_time"), d),
        None => Some(Distribution::constant_ns(0.0)),
    };
    let miss_time = match &c.miss_time {
        Some(d) => dist(errs, &join(path, "miss_time"), d),
        None => hit_time.clone(),
    };
    let on_miss = backend(r, errs, path, me, c);
    let has_backend = c.on_miss.is_some();
    let coalesce = c.coalesce.unwrap_or(false);
    if coalesce && !has_backend {
        errs.push(
            join(path, "coalesce"),
            "coalescing shares a fill among the misses of a key, and a cache without \"on_miss\" makes no fill (cache-aside: the caller fetches); add \"on_miss\" or remove \"coalesce\"",
        );
    }
    let write = write_policy(errs, path, c, has_backend);
    let flush_after_ns = flush_after(errs, path, c, write);
    let links = on_miss
        .map(|g| Link {
            class: None,
            kind: LinkKind::Wait { need: 1 },
            targets: vec![(g as usize, 1.0)],
            path: join(path, "on_miss"),
        })
        .into_iter()
        .collect();
    Some(CacheDef {
        capacity: capacity?,
        eviction: eviction?,
        ttl_ns,
        ttl_refresh,
        hit_time: hit_time?,
        miss_time: miss_time?,
        on_miss: if has_backend { Some(on_miss?) } else { None },
        coalesce,
        write,
        flush_after_ns,
        warm: c.warm.unwrap_or(false),
        classes: r.classes.to_vec(),
        links,
        estimate: Default::default(),
    })
}

fn capacity(errs: &mut Errors, path: &str, capacity: u64) -> Option<u32> {
    let p = join(path, "capacity");
    if capacity == 0 {
        errs.push(p, "a cache holds at least 1 key, got 0");
        None
    } else if capacity > MAX_CAPACITY {
        errs.push(
            p,
            format!("must be at most {MAX_CAPACITY} keys per instance, got {capacity}"),
        );
        None
    } else {
        Some(capacity as u32)
    }
}

fn eviction(
    errs: &mut Errors,
    path: &str,
    c: &CacheSpec,
    capacity: Option<u32>,
) -> Option<Eviction> {
    let e = c.eviction.unwrap_or(EvictionSpec::Lru);
    if c.protected.is_some() && e != EvictionSpec::Slru {
        errs.push(
            join(path, "protected"),
            "\"protected\" applies only with \"eviction\": \"slru\"",
        );
    }
    Some(match e {
        EvictionSpec::Lru => Eviction::Lru,
        EvictionSpec::Lfu => Eviction::Lfu,
        EvictionSpec::Fifo => Eviction::Fifo,
        EvictionSpec::Random => Eviction::Random,
        EvictionSpec::Slru => {
            let share = c.protected.unwrap_or(DEFAULT_PROTECTED);
            if !(0.0..=1.0).contains(&share) {
                errs.push(
                    join(path, "protected"),
                    format!("must be a share in [0, 1], got {}", num(share)),
                );
                return None;
            }
            let protected = (f64::from(capacity?) * share).floor() as u32;
            Eviction::Slru { protected }
        }
    })
}

fn ttl(errs: &mut Errors, path: &str, c: &CacheSpec) -> (u64, bool) {
    let refresh = c.ttl_refresh.unwrap_or(false);
    let Some(t) = c.ttl else {
        if c.ttl_refresh.is_some() {
            errs.push(
                join(path, "ttl_refresh"),
                "\"ttl_refresh\" applies only with a \"ttl\"",
            );
        }
        return (0, false);
    };
    let ns = t.to_sim().0;
    if ns == 0 {
        errs.push(
            join(path, "ttl"),
            "must be longer than zero (leave \"ttl\" out for entries that never expire)",
        );
    }
    (ns, refresh)
}

/// The group of `on_miss`, when given and valid.
fn backend(r: &Resolver, errs: &mut Errors, path: &str, me: usize, c: &CacheSpec) -> Option<u32> {
    let name = c.on_miss.as_ref()?;
    let p = join(path, "on_miss");
    let g = errs.take(r.group(&p, name))?;
    if g as usize == me {
        errs.push(
            p,
            format!(
                "a cache cannot read through to itself (\"{name}\"): a miss would wait on itself forever; name the component behind it (a database or a service)"
            ),
        );
        return None;
    }
    Some(g)
}

fn write_policy(errs: &mut Errors, path: &str, c: &CacheSpec, has_backend: bool) -> WritePolicy {
    let w = c.write.unwrap_or(WritePolicySpec::Invalidate);
    if w != WritePolicySpec::Invalidate && !has_backend {
        errs.push(
            join(path, "write"),
            format!(
                "\"{}\" writes to the component behind the cache, and this cache has none; add \"on_miss\", or use \"invalidate\" (cache-aside: the caller writes the database)",
                w.name()
            ),
        );
    }
    match w {
        WritePolicySpec::Invalidate => WritePolicy::Invalidate,
        WritePolicySpec::WriteThrough => WritePolicy::WriteThrough,
        WritePolicySpec::WriteBack => WritePolicy::WriteBack,
        WritePolicySpec::WriteAround => WritePolicy::WriteAround,
    }
}

fn flush_after(errs: &mut Errors, path: &str, c: &CacheSpec, write: WritePolicy) -> u64 {
    let Some(t) = c.flush_after else {
        return DEFAULT_FLUSH_AFTER_NS;
    };
    let p = join(path, "flush_after");
    if write != WritePolicy::WriteBack {
        errs.push(
            p,
            "\"flush_after\" applies only with \"write\": \"write_back\"",
        );
        return DEFAULT_FLUSH_AFTER_NS;
    }
    let ns = t.to_sim().0;
    if ns == 0 {
        errs.push(p, "must be longer than zero");
    }
    ns.max(1)
}

#[cfg(test)]
mod tests {
    use crate::model::{Format, parse_model_str};

    /// The errors (path, message) of a model with a cache `c` read by service `app`,
    /// and a database-like service `db`.
    fn errors(cache: &str) -> Vec<(String, String)> {
        let text = format!(
            r#"{{"duration": "1s",
                "workloads": {{"w": {{"arrivals": {{"poisson": {{"rate": 10}}}}, "target": "app"}}}},
                "components": {{
                  "app": {{"kind": "service", "handler": [{{"call": "c"}}]}},
                  "c": {cache},
                  "db": {{"kind": "service", "service_time": {{"constant": "1ms"}}}}}}}}"#
        );
        match parse_model_str(&text, Format::Json, std::path::Path::new("."), &[]) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| (e.path, e.message)).collect(),
        }
    }

    fn first(cache: &str) -> (String, String) {
        errors(cache).into_iter().next().expect("an error")
    }

    #[test]
    fn a_valid_cache_passes() {
        let ok = errors(
            r#"{"kind": "cache", "capacity": 100, "eviction": "slru", "protected": 0.5,
                "ttl": "5s", "ttl_refresh": true, "hit_time": {"constant": "1ms"},
                "on_miss": "db", "coalesce": true, "write": "write_back", "flush_after": "2s",
                "warm": true}"#,
        );
        assert!(ok.is_empty(), "{ok:?}");
        assert!(errors(r#"{"kind": "cache", "capacity": 1}"#).is_empty());
    }

    #[test]
    fn capacity_zero_is_refused_at_its_path() {
        let (p, m) = first(r#"{"kind": "cache", "capacity": 0, "on_miss": "db"}"#);
        assert_eq!(p, "components.c.capacity");
        assert!(m.contains("at least 1"), "{m}");
        let (p, _) = first(r#"{"kind": "cache", "capacity": 10000000000}"#);
        assert_eq!(p, "components.c.capacity");
    }

    #[test]
    fn an_unknown_eviction_lists_the_policies() {
        let (p, m) = first(r#"{"kind": "cache", "capacity": 10, "eviction": "mru"}"#);
        assert_eq!(p, "components.c.eviction", "{m}");
        for name in ["lru", "lfu", "fifo", "random", "slru"] {
            assert!(m.contains(name), "{m}");
        }
    }

    #[test]
    fn on_miss_may_not_loop_back_to_the_cache() {
        let (p, m) = first(r#"{"kind": "cache", "capacity": 10, "on_miss": "c"}"#);
        assert_eq!(p, "components.c.on_miss");
        assert!(m.contains("itself"), "{m}");
        // Through another component: the model's cycle check names the loop.
        let text = r#"{"duration": "1s",
            "workloads": {"w": {"arrivals": {"poisson": {"rate": 10}}, "target": "c"}},
            "components": {
              "c": {"kind": "cache", "capacity": 10, "on_miss": "app"},
              "app": {"kind": "service", "handler": [{"call": "c"}]}}}"#;
        let e = parse_model_str(text, Format::Json, std::path::Path::new("."), &[]).unwrap_err();
        assert!(e[0].message.contains("call cycle: c -> app -> c"), "{e:?}");
        let (p, m) = first(r#"{"kind": "cache", "capacity": 10, "on_miss": "dbb"}"#);
        assert_eq!(p, "components.c.on_miss");
        assert!(m.contains("did you mean \"db\""), "{m}");
    }

    #[test]
    fn write_policies_that_need_a_backend_are_refused_without_one() {
        for w in ["write_through", "write_back", "write_around"] {
            let (p, m) = first(&format!(
                r#"{{"kind": "cache", "capacity": 10, "write": "{w}"}}"#
            ));
            assert_eq!(p, "components.c.write");
            assert!(m.contains(w) && m.contains("on_miss"), "{m}");
        }
        assert!(errors(r#"{"kind": "cache", "capacity": 10, "write": "invalidate"}"#).is_empty());
    }

    #[test]
    fn fields_that_apply_only_with_another_are_refused_alone() {
        let cases = [
            (r#""protected": 0.5"#, "components.c.protected"),
            (r#""ttl_refresh": true"#, "components.c.ttl_refresh"),
            (
                r#""on_miss": "db", "flush_after": "1s""#,
                "components.c.flush_after",
            ),
            (r#""coalesce": true"#, "components.c.coalesce"),
            (r#""ttl": "0s""#, "components.c.ttl"),
            (
                r#""eviction": "slru", "protected": 1.5"#,
                "components.c.protected",
            ),
            (
                r#""hit_time": {"constant": "-1ms"}"#,
                "components.c.hit_time.constant",
            ),
        ];
        for (fields, path) in cases {
            let (p, m) = first(&format!(r#"{{"kind": "cache", "capacity": 10, {fields}}}"#));
            assert_eq!(p, path, "{fields}: {m}");
        }
    }
}
