//! Fair scheduling of events across tenants, in order within a contact.
//!
//! Every event belongs to a contact (its shard key). A contact's events run
//! one at a time, in journal order; different contacts run in parallel on
//! the worker threads. Tenants take turns (round robin over the tenants
//! that have work).
//!
//! A tenant whose events are expensive — its plugin burns its budget, say —
//! moves to the *background* class: its events run only on a small pool of
//! low-priority threads, so under contention the operating system gives the
//! CPU to everyone else's decisions, and the expensive tenant slows down its
//! own backlog rather than other tenants'. It moves back as soon as its
//! events are cheap again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Event;
use crate::clock::Millis;

/// Events of one contact held in memory; the rest of its backlog waits as
/// bare sequence numbers (see [`Scheduler::push`]).
const LOADED_PER_CONTACT: usize = 8;

/// An event handed to a worker.
pub struct Job {
    pub contact: u64,
    pub tenant: String,
    pub seq: u64,
    /// `None` for an event parked by its sequence number: the worker reads
    /// it from the journal.
    pub event: Option<Event>,
}

/// A contact's events, in journal order: the first few in memory, the rest
/// by sequence number only.
#[derive(Default)]
struct ContactQueue {
    loaded: VecDeque<(u64, Event)>,
    parked: VecDeque<u64>,
}

impl ContactQueue {
    fn is_empty(&self) -> bool {
        self.loaded.is_empty() && self.parked.is_empty()
    }
}

#[derive(Default)]
struct TenantQueue {
    /// Contacts with queued events and none running, in arrival order.
    ready: VecDeque<u64>,
    running: usize,
    /// Events held in memory (loaded and not finished).
    loaded: usize,
    /// Events waiting by sequence number only.
    parked: usize,
    /// Exponentially weighted cost of this tenant's events, in µs.
    cost_us: f64,
}

/// A job a worker is applying, for `/healthz`.
struct Running {
    tenant: String,
    seq: u64,
    started: Instant,
    /// When the event happened (received, due…), for the backlog's age.
    since: Millis,
    failures: u32,
    last_error: Option<String>,
}

/// A lane (one contact's queue) whose head event has been running, or
/// failing, for too long.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StalledLane {
    pub tenant: String,
    /// The journal sequence number of the event at the head of the lane.
    pub seq: u64,
    pub running_ms: u64,
    pub failed_attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct State {
    contacts: HashMap<u64, ContactQueue>,
    busy: HashMap<u64, Running>,
    /// When each loaded event happened, by contact, oldest first.
    since: HashMap<u64, VecDeque<Millis>>,
    tenants: HashMap<String, TenantQueue>,
    /// Tenants with ready contacts, in turn order.
    ring: VecDeque<String>,
    closed: bool,
}

/// Which tenants a worker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Tenants whose events are cheap (everyone, normally).
    Normal,
    /// Tenants whose events are expensive, on low-priority threads.
    Background,
}

pub struct Scheduler {
    state: Mutex<State>,
    work: Condvar,
    /// Mean event cost above which a tenant counts as expensive.
    heavy_cost: Duration,
}

impl Scheduler {
    pub fn new(heavy_cost: Duration) -> Self {
        Scheduler { state: Mutex::default(), work: Condvar::new(), heavy_cost }
    }

    /// Queues an event (called by the dispatcher, in journal order).
    ///
    /// A contact with a backlog keeps only its first few events in memory
    /// and the rest as sequence numbers, so the dispatcher can read past a
    /// busy contact to everyone else's events without holding the whole
    /// backlog: one contact's burst never becomes the tenant's
    /// head-of-line block.
    pub fn push(&self, tenant: &str, contact: u64, seq: u64, event: Event) {
        let Ok(mut s) = self.state.lock() else { return };
        let s = &mut *s;
        let queue = s.contacts.entry(contact).or_default();
        let was_empty = queue.is_empty();
        let t = s.tenants.entry(tenant.to_string()).or_default();
        if queue.parked.is_empty() && queue.loaded.len() < LOADED_PER_CONTACT {
            s.since.entry(contact).or_default().push_back(event.since());
            queue.loaded.push_back((seq, event));
            t.loaded += 1;
        } else {
            queue.parked.push_back(seq);
            t.parked += 1;
        }
        if was_empty && !s.busy.contains_key(&contact) {
            t.ready.push_back(contact);
            if !s.ring.iter().any(|r| r == tenant) {
                s.ring.push_back(tenant.to_string());
            }
        }
        self.work.notify_one();
    }

    /// Events of `tenant` held in memory (not yet finished), and parked.
    pub fn queued(&self, tenant: &str) -> (usize, usize) {
        self.state.lock().map(|s| s.tenants.get(tenant).map_or((0, 0), |t| (t.loaded, t.parked))).unwrap_or((0, 0))
    }

    /// The next job for a worker of `class`, waiting up to `timeout`;
    /// `None` on timeout or close.
    pub fn take(&self, class: Class, timeout: Duration) -> Option<Job> {
        let Ok(mut s) = self.state.lock() else { return None };
        loop {
            if s.closed {
                return None;
            }
            if let Some(job) = self.next(&mut s, class) {
                return Some(job);
            }
            s = match self.work.wait_timeout(s, timeout) {
                Ok((guard, t)) if t.timed_out() => {
                    let mut guard = guard;
                    return self.next(&mut guard, class);
                }
                Ok((guard, _)) => guard,
                Err(_) => return None,
            };
        }
    }

    fn next(&self, s: &mut State, class: Class) -> Option<Job> {
        let heavy_cost = self.heavy_cost.as_micros() as f64;
        for _ in 0..s.ring.len() {
            let tenant = s.ring.pop_front()?;
            let Some(t) = s.tenants.get_mut(&tenant) else { continue };
            let tenant_class = if t.cost_us > heavy_cost { Class::Background } else { Class::Normal };
            if tenant_class != class || t.ready.is_empty() {
                if !t.ready.is_empty() {
                    s.ring.push_back(tenant);
                }
                continue;
            }
            let Some(contact) = t.ready.pop_front() else { continue };
            t.running += 1;
            if !t.ready.is_empty() {
                s.ring.push_back(tenant.clone());
            }
            let queue = s.contacts.get_mut(&contact)?;
            let (seq, event, since) = match queue.loaded.pop_front() {
                Some((seq, event)) => {
                    let since = s.since.get_mut(&contact).and_then(VecDeque::pop_front).unwrap_or_default();
                    (seq, Some(event), since)
                }
                None => {
                    let seq = queue.parked.pop_front()?;
                    t.parked = t.parked.saturating_sub(1);
                    t.loaded += 1; // counted as loaded while it runs
                    (seq, None, 0)
                }
            };
            let running =
                Running { tenant: tenant.clone(), seq, started: Instant::now(), since, failures: 0, last_error: None };
            s.busy.insert(contact, running);
            return Some(Job { contact, tenant, seq, event });
        }
        None
    }

    /// Records that `job` failed once (it is being tried again), for
    /// `/healthz`.
    pub fn failed_attempt(&self, job: &Job, error: &str) {
        if let Ok(mut s) = self.state.lock()
            && let Some(r) = s.busy.get_mut(&job.contact)
        {
            r.failures += 1;
            r.last_error = Some(error.chars().take(200).collect());
        }
    }

    /// Marks `job` finished after `cost` (CPU time); the contact's next event (if any)
    /// becomes ready.
    pub fn done(&self, job: &Job, cost: Duration) {
        let Ok(mut s) = self.state.lock() else { return };
        let s = &mut *s;
        s.busy.remove(&job.contact);
        let more = s.contacts.get(&job.contact).is_some_and(|q| !q.is_empty());
        if !more {
            s.contacts.remove(&job.contact);
            s.since.remove(&job.contact);
        }
        let t = s.tenants.entry(job.tenant.clone()).or_default();
        t.running = t.running.saturating_sub(1);
        t.loaded = t.loaded.saturating_sub(1);
        t.cost_us = 0.8 * t.cost_us + 0.2 * cost.as_micros() as f64;
        if more {
            t.ready.push_back(job.contact);
        }
        let has_ready = !t.ready.is_empty();
        if has_ready && !s.ring.iter().any(|r| r == &job.tenant) {
            s.ring.push_back(job.tenant.clone());
        }
        self.work.notify_all();
    }

    /// Records when a parked event, now read from the journal, happened.
    pub fn loaded(&self, job: &Job, since: Millis) {
        if let Ok(mut s) = self.state.lock()
            && let Some(r) = s.busy.get_mut(&job.contact)
        {
            r.since = since;
        }
    }

    /// Lanes whose head event has run (or kept failing) for `after` or more.
    pub fn stalled(&self, after: Duration) -> Vec<StalledLane> {
        let Ok(s) = self.state.lock() else { return Vec::new() };
        s.busy
            .values()
            .filter(|r| r.started.elapsed() >= after)
            .map(|r| StalledLane {
                tenant: r.tenant.clone(),
                seq: r.seq,
                running_ms: r.started.elapsed().as_millis() as u64,
                failed_attempts: r.failures,
                last_error: r.last_error.clone(),
            })
            .collect()
    }

    /// When the oldest event held (running or queued in memory) happened.
    /// The journal is read in order, so nothing older waits elsewhere.
    pub fn oldest_since(&self) -> Option<Millis> {
        let s = self.state.lock().ok()?;
        let running = s.busy.values().map(|r| r.since).filter(|&t| t > 0);
        let queued = s.since.values().filter_map(|q| q.front().copied());
        running.chain(queued).min()
    }

    /// Wakes every waiting worker and makes `take` return `None`.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.work.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{SendOutcome, SendResult};
    use crate::pipeline::Event;

    fn ev(tenant: &str, n: u64) -> Event {
        Event::SendResult(SendResult {
            tenant: tenant.into(),
            message_id: format!("m{n}"),
            to: "1".into(),
            lane: None,
            at: 0,
            outcome: SendOutcome::DryRun,
        })
    }

    #[test]
    fn one_contact_runs_in_order_and_never_twice_at_once() {
        let s = Scheduler::new(Duration::from_millis(5));
        for n in 0..3 {
            s.push("a", 7, n, ev("a", n));
        }
        let first = s.take(Class::Normal, Duration::ZERO).unwrap();
        assert_eq!(first.seq, 0);
        assert!(s.take(Class::Normal, Duration::ZERO).is_none(), "the contact is busy");
        s.done(&first, Duration::from_micros(10));
        assert_eq!(s.take(Class::Normal, Duration::ZERO).unwrap().seq, 1);
    }

    #[test]
    fn tenants_take_turns_and_an_expensive_tenant_moves_to_the_background() {
        let s = Scheduler::new(Duration::from_millis(5));
        for c in 0..4 {
            s.push("heavy", c, c, ev("heavy", c));
        }
        s.push("light", 100, 10, ev("light", 10));
        let a = s.take(Class::Normal, Duration::ZERO).unwrap();
        let b = s.take(Class::Normal, Duration::ZERO).unwrap();
        assert_ne!(a.tenant, b.tenant, "round robin");
        assert!(s.take(Class::Background, Duration::ZERO).is_none(), "nobody is expensive yet");
        // The heavy tenant's events turn out slow.
        let heavy = if a.tenant == "heavy" { a } else { b };
        s.done(&heavy, Duration::from_millis(50));
        assert!(s.take(Class::Normal, Duration::ZERO).is_none(), "normal workers no longer take it");
        assert_eq!(s.take(Class::Background, Duration::ZERO).unwrap().tenant, "heavy");
        s.push("light", 101, 11, ev("light", 11));
        assert_eq!(s.take(Class::Normal, Duration::ZERO).unwrap().tenant, "light", "the light tenant still runs");
    }
}

#[cfg(test)]
mod stress {
    use super::*;
    use crate::outbound::{SendOutcome, SendResult};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_job_completes_under_concurrency() {
        let s = Arc::new(Scheduler::new(Duration::from_millis(5)));
        let done = Arc::new(AtomicUsize::new(0));
        let total = 5000;
        let workers: Vec<_> = [Class::Normal, Class::Normal, Class::Normal, Class::Background]
            .into_iter()
            .map(|class| {
                let (s, done) = (s.clone(), done.clone());
                std::thread::spawn(move || {
                    while let Some(job) = s.take(class, Duration::from_millis(200)) {
                        let cost = if job.seq % 7 == 0 { Duration::from_millis(8) } else { Duration::from_micros(50) };
                        std::thread::sleep(Duration::from_micros(20));
                        s.done(&job, cost);
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for n in 0..total as u64 {
            let tenant = if n % 3 == 0 { "a" } else { "b" };
            let ev = Event::SendResult(SendResult {
                tenant: tenant.into(),
                message_id: n.to_string(),
                to: "1".into(),
                lane: None,
                at: 0,
                outcome: SendOutcome::DryRun,
            });
            s.push(tenant, n % 37, n, ev);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while done.load(Ordering::SeqCst) < total && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(done.load(Ordering::SeqCst), total);
        s.close();
        for w in workers {
            w.join().unwrap();
        }
    }
}
