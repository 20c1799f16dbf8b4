//! Process-wide state of the adapter: the per-IKE_SA memory the core keeps
//! between tasks, and the core's environment (random source, the made-up
//! NAT-D source address).
//!
//! Bounded: at most [`MAX_SAS`] IKE_SAs are remembered, and only those that
//! negotiated MOBIKE ([`with_memory_for`]); beyond that a task works with
//! an ephemeral memory, and the core refuses what it cannot remember
//! ([`SaMemory::ephemeral`]) rather than lose it silently.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use ring::rand::{SecureRandom, SystemRandom};

use crate::mobike::policy::SettingError;
use crate::mobike::task::Env;
use crate::mobike::{Policy, SaMemory};

/// Most IKE_SAs whose memory is kept (a gateway with many road warriors).
pub const MAX_SAS: usize = 1 << 17;

/// The memories are split by unique ID so that the worker threads of a
/// gateway moving many IKE_SAs at once rarely wait for one another.
const SHARDS: usize = 64;

/// Unique IDs are charon's own counter, not a peer's choice: a multiply
/// spreads them well enough, at a fraction of SipHash's cost per step.
#[derive(Default)]
struct UniqueIdHasher(u64);

impl std::hash::Hasher for UniqueIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // only u32 keys are hashed; anything else still gets a fair hash
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        self.0 ^= self.0 >> 32;
    }
    fn write_u32(&mut self, id: u32) {
        // the table indexes by the low bits: fold the high ones in, as the
        // IDs of one shard share their low six bits
        let h = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = h ^ (h >> 32);
    }
}

/// Boxed: a shard's table holds up to twice as many slots as IKE_SAs, and
/// an empty slot then costs a pointer instead of a whole memory.
type Memories = HashMap<u32, Box<SaMemory>, std::hash::BuildHasherDefault<UniqueIdHasher>>;
type Shard = Mutex<Memories>;

fn shards() -> &'static [Shard; SHARDS] {
    static M: OnceLock<[Shard; SHARDS]> = OnceLock::new();
    M.get_or_init(|| std::array::from_fn(|_| Mutex::new(Memories::default())))
}

fn shard(unique_id: u32) -> std::sync::MutexGuard<'static, Memories> {
    shards()[unique_id as usize % SHARDS]
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` with the memory of IKE_SA `unique_id`, under its shard's lock:
/// calls for one IKE_SA (its task, the liveness poll) take turns, and the
/// memory is neither copied nor looked up twice (a gateway's cost per
/// roaming IKE_SA). `f` is the core's work on one IKE_SA, a few
/// microseconds, and must not come back here. A panic inside leaves the
/// memory as far as `f` got, a valid value; the task fails and new ones go
/// to the built-in MOBIKE.
pub fn with_memory<R>(unique_id: u32, f: impl FnOnce(&mut SaMemory) -> R) -> R {
    let mut map = shard(unique_id);
    if map.len() >= MAX_SAS / SHARDS && !map.contains_key(&unique_id) {
        drop(map);
        return f(&mut SaMemory {
            ephemeral: true,
            ..SaMemory::default()
        });
    }
    let mem = map.entry(unique_id).or_default();
    let watched = mem.liveness_watched;
    let r = f(mem);
    if mem.liveness_watched != watched {
        set_watched(unique_id, mem.liveness_watched);
    }
    r
}

/// As [`with_memory`], but memory is stored for IKE_SA `unique_id` only
/// when `keep` (it negotiated MOBIKE and is authenticated): a half-open
/// IKE_SA, or one without MOBIKE, works on its stored memory if it has
/// one and otherwise on a temporary one, so unauthenticated peers cannot
/// fill the registry.
pub fn with_memory_for<R>(unique_id: u32, keep: bool, f: impl FnOnce(&mut SaMemory) -> R) -> R {
    if keep || shard(unique_id).contains_key(&unique_id) {
        return with_memory(unique_id, f);
    }
    f(&mut SaMemory::default())
}

/// The unique IDs of the IKE_SAs whose liveness is watched, kept apart so
/// the poll reads them without going through every IKE_SA of a gateway.
/// Changed only when an IKE_SA starts or stops being watched, under the
/// lock of its shard.
fn watched() -> &'static Mutex<BTreeSet<u32>> {
    static W: OnceLock<Mutex<BTreeSet<u32>>> = OnceLock::new();
    W.get_or_init(|| Mutex::new(BTreeSet::new()))
}

fn set_watched(unique_id: u32, on: bool) {
    let mut w = watched().lock().unwrap_or_else(|p| p.into_inner());
    if on {
        w.insert(unique_id);
    } else {
        w.remove(&unique_id);
    }
}

/// Runs `f` with the memory of IKE_SA `unique_id` if a MOBIKE task ever
/// ran on it; `None` otherwise (nothing is stored for it then).
pub fn with_known_memory<R>(unique_id: u32, f: impl FnOnce(&mut SaMemory) -> R) -> Option<R> {
    let known = shard(unique_id).contains_key(&unique_id);
    known.then(|| with_memory(unique_id, f))
}

/// Forgets IKE_SA `unique_id`.
pub fn forget(unique_id: u32) {
    let mut map = shard(unique_id);
    if map.remove(&unique_id).is_some_and(|m| m.liveness_watched) {
        set_watched(unique_id, false);
    }
}

/// Up to `cap` unique IDs of IKE_SAs whose liveness is watched.
pub fn liveness_watched(cap: usize) -> Vec<u32> {
    watched()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .take(cap)
        .copied()
        .collect()
}

/// Number of IKE_SAs remembered.
pub fn remembered() -> usize {
    shards()
        .iter()
        .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
        .sum()
}

fn rng() -> &'static SystemRandom {
    static RNG: OnceLock<SystemRandom> = OnceLock::new();
    RNG.get_or_init(SystemRandom::new)
}

/// The made-up NAT-D source address (random per process).
fn fake_natd_source() -> Ipv4Addr {
    static FAKE: OnceLock<Ipv4Addr> = OnceLock::new();
    *FAKE.get_or_init(|| {
        let mut b = [0u8; 4];
        // A failing system RNG also fails COOKIE2 generation, which the core
        // reports; an all-zero made-up address is still a valid NAT-D input.
        let _ = rng().fill(&mut b);
        Ipv4Addr::from(b)
    })
}

/// Runs `f` with the core's environment.
pub fn with_env<R>(f: impl FnOnce(&Env<'_>) -> R) -> R {
    with_policy(|policy| {
        f(&Env {
            rng: rng(),
            fake_natd_source: fake_natd_source(),
            policy,
        })
    })
}

/// Bumped by every change of the policy, after the change.
static POLICY_GENERATION: AtomicU64 = AtomicU64::new(0);

/// Runs `f` with the policy in effect, from this thread's copy of the
/// shared one: a gateway's worker threads each take a step per roaming
/// IKE_SA, and one lock and one reference count shared by all of them cost
/// more than the step's own reads. The copy is refreshed when the
/// generation moved; a step that started keeps the policy it took.
pub fn with_policy<R>(f: impl FnOnce(&Policy) -> R) -> R {
    thread_local! {
        static LOCAL: std::cell::RefCell<Option<(u64, Arc<Policy>)>> =
            const { std::cell::RefCell::new(None) };
    }
    // read before the policy: at worst the copy is refreshed once more
    let generation = POLICY_GENERATION.load(Ordering::Acquire);
    LOCAL.with(|cell| {
        // a call nested in another on this thread (none today) cannot
        // refresh the copy the outer one is reading, and reads that one
        if let Ok(mut local) = cell.try_borrow_mut() {
            if !matches!(&*local, Some((g, _)) if *g == generation) {
                *local = Some((generation, policy()));
            }
        }
        match &*cell.borrow() {
            Some((_, p)) => f(p),
            None => f(&policy()),
        }
    })
}

/// Shared, not copied: steps read it through [`with_policy`], settings
/// change rarely (a change makes a new policy; steps running keep the one
/// they took).
fn policy_lock() -> &'static RwLock<Arc<Policy>> {
    static P: OnceLock<RwLock<Arc<Policy>>> = OnceLock::new();
    P.get_or_init(|| RwLock::new(Arc::new(Policy::default())))
}

/// Applies one setting to the process-wide policy (see [`Policy::set`]);
/// `None` sets it back to its default.
pub fn set_policy(key: &str, value: Option<&str>) -> Result<(), SettingError> {
    let mut p = policy_lock().write().unwrap_or_else(|p| p.into_inner());
    let p = Arc::make_mut(&mut p);
    let r = match value {
        Some(v) => p.set(key, v),
        None => p.reset(key),
    };
    POLICY_GENERATION.fetch_add(1, Ordering::Release);
    r
}

/// The policy in effect.
fn policy() -> Arc<Policy> {
    Arc::clone(&policy_lock().read().unwrap_or_else(|p| p.into_inner()))
}

/// `liveness_timeout` in milliseconds (the liveness poll asks for it every
/// round).
pub fn liveness_timeout_ms() -> u64 {
    policy_lock()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .liveness_timeout_ms
}

/// The policy as one log line.
pub fn describe_policy() -> String {
    policy_lock()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .describe()
}

/// What the status shows of IKE_SA `unique_id`; `None` if no MOBIKE task
/// has run on it.
pub fn stats_of(unique_id: u32) -> Option<crate::mobike::SaStats> {
    shard(unique_id).get(&unique_id).map(|m| m.stats)
}

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, BuildHasherDefault};

    #[test]
    fn half_open_ike_sas_create_no_memory() {
        // 150,000 IKE_SAs that never authenticated run a MOBIKE step each
        let base = 2_000_000_000u32;
        for id in base..base + 150_000 {
            super::with_memory_for(id, false, |m| m.nat_retries += 1);
        }
        assert!((base..base + 150_000).all(|id| super::with_known_memory(id, |_| ()).is_none()));
        // an authenticated MOBIKE IKE_SA still gets memory of its own, and
        // the check of its childless move is still remembered
        let id = base - 1;
        let p = crate::mobike::Path {
            local: "198.18.1.1:4500".parse().unwrap(),
            remote: "198.18.2.2:4500".parse().unwrap(),
        };
        super::with_memory_for(id, true, |m| {
            assert!(!m.ephemeral);
            m.unchecked_path = Some(p);
        });
        // a later step of the same IKE_SA sees it even if it would not keep
        assert!(super::with_memory_for(id, false, |m| m.child_sa_up(p)));
        super::forget(id);
    }

    #[test]
    fn past_the_cap_memory_is_ephemeral_not_silently_fresh() {
        // fill one shard to its share of the cap (ids of one shard)
        let shard = 7u32;
        let per = (super::MAX_SAS / super::SHARDS) as u32;
        let ids: Vec<u32> = (0..per)
            .map(|i| 1_000_000 + i * super::SHARDS as u32 + shard)
            .collect();
        for &id in &ids {
            super::with_memory_for(id, true, |m| assert!(!m.ephemeral));
        }
        let extra = 1_000_000 + per * super::SHARDS as u32 + shard;
        super::with_memory_for(extra, true, |m| assert!(m.ephemeral));
        assert!(super::with_known_memory(extra, |_| ()).is_none());
        for id in ids {
            super::forget(id);
        }
    }

    #[test]
    fn one_shards_unique_ids_spread_over_the_low_bits() {
        let b = BuildHasherDefault::<super::UniqueIdHasher>::default();
        let buckets: std::collections::HashSet<u64> = (0..1024u32)
            .map(|i| b.hash_one(i * super::SHARDS as u32 + 5) & 1023)
            .collect();
        assert!(buckets.len() > 512, "{} of 1024 buckets", buckets.len());
    }
}
