//! The backend conformance suite: every backend must pass every check here.
//!
//! Every check is written inside `checks!`, which also lists it in [`CHECKS`]: each backend's
//! `conformance_*` test target runs that list through `qtask_testkit::run_checks`, one test per
//! check, so a check added here runs on every backend without being listed again. Each check
//! works in its own uuid-named pool, so checks and test binaries can share one store.

#![allow(dead_code)]

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use qtask_pool::{
    Claim, CreateOptions, FetchOptions, PoolError, Query, SafeFetchError, Status, TaskPool, open,
    safe_fetch,
};
use serde_json::{Value, json};

/// The dashboard reads (`overview`, `task_page`, `done_durations`), listed below.
mod overview;

/// A fresh, uniquely named pool, emptied when the check ends (so a shared server does not
/// fill up with test pools).
pub struct Fresh(Box<dyn TaskPool>);

impl std::ops::Deref for Fresh {
    type Target = dyn TaskPool;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.0.remove(&Query::all());
    }
}

/// Opens a fresh, uniquely named pool.
pub fn fresh(url: &str) -> Fresh {
    let name = format!("test-{}", uuid::Uuid::new_v4().simple());
    Fresh(open(url, &name).expect("open store"))
}

fn q(text: &str) -> Query {
    Query::parse_str(text).unwrap()
}

fn create(p: &dyn TaskPool, defs: &[Value]) -> Vec<String> {
    p.create_tasks(defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect()
}

fn fetch(p: &dyn TaskPool) -> Option<qtask_pool::ClaimedTask> {
    p.fetch_task(&FetchOptions::default()).unwrap()
}

fn fetch_with(
    p: &dyn TaskPool,
    lease: Option<Duration>,
    status: Status,
) -> Option<qtask_pool::ClaimedTask> {
    p.fetch_task(&FetchOptions {
        lease,
        status,
        ..FetchOptions::default()
    })
    .unwrap()
}

fn ids(tasks: &[qtask_pool::Task]) -> Vec<String> {
    tasks.iter().map(|t| t.id.clone()).collect()
}

/// Defines the checks and [`CHECKS`], the list every backend runs.
macro_rules! checks {
    ($($(#[$attr:meta])* pub fn $name:ident($url:ident: &str) $body:block)*) => {
        $($(#[$attr])* pub fn $name($url: &str) $body)*

        /// Every check, by name, in the order written.
        pub const CHECKS: &[qtask_testkit::Check] = &[$((stringify!($name), $name as fn(&str))),*];
    };
}

checks! {
    pub fn dedup_by_canonical_json(url: &str) {
        let p = fresh(url);
        let a: Value =
            serde_json::from_str(r#"{"model": {"class": "LGB", "kwargs": {"lr": 0.1}}, "seed": 1}"#)
                .unwrap();
        let a_reordered: Value =
            serde_json::from_str(r#"{"seed": 1, "model": {"kwargs": {"lr": 0.1}, "class": "LGB"}}"#)
                .unwrap();
        let b = json!({"seed": 2});
        let out = p
            .create_tasks(
                &[a.clone(), b.clone(), a_reordered],
                &CreateOptions::default(),
            )
            .unwrap();
        assert_eq!(out[0].id, out[2].id, "same definition inside one call");
        assert_ne!(out[0].id, out[1].id);
        assert_eq!(
            out.iter().map(|c| c.new).collect::<Vec<_>>(),
            [true, true, false]
        );

        // A done task is reused, not reset.
        let claimed = fetch(&*p).unwrap();
        p.commit_task_res(&claimed.task.id, Some(&claimed.token), &json!(1), None)
            .unwrap();
        let again = p
            .create_tasks(&[b, a, json!({"seed": 3})], &CreateOptions::default())
            .unwrap();
        assert_eq!(again[0].id, out[1].id);
        assert_eq!(again[1].id, out[0].id);
        assert!(again[2].new && !again[0].new && !again[1].new);
        assert_eq!(p.query(&Query::all()).unwrap().len(), 3);
        assert_eq!(p.re_query(&claimed.task.id).unwrap().status, Status::Done);
    }

    pub fn dry_run_inserts_nothing(url: &str) {
        let p = fresh(url);
        let old = create(&*p, &[json!({"a": 1})]);
        let out = p
            .create_tasks(
                &[json!({"a": 1}), json!({"a": 2}), json!({"a": 2})],
                &CreateOptions {
                    dry_run: true,
                    ..CreateOptions::default()
                },
            )
            .unwrap();
        assert_eq!(out[0].id.as_deref(), Some(old[0].as_str()));
        assert!(!out[0].new);
        assert!(out[1].new && out[1].id.is_none());
        assert!(!out[2].new, "the second copy in one call is not new");
        assert_eq!(p.query(&Query::all()).unwrap().len(), 1);
    }

    pub fn non_object_definition_is_refused(url: &str) {
        let p = fresh(url);
        let err = p
            .create_tasks(&[json!({"a": 1}), json!([1, 2])], &CreateOptions::default())
            .unwrap_err();
        assert!(matches!(err, PoolError::BadTask { index: 1, .. }), "{err}");
        assert!(
            p.query(&Query::all()).unwrap().is_empty(),
            "nothing inserted"
        );
    }

    pub fn priority_desc_nulls_last_then_insertion(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &(0..5).map(|i| json!({"i": i})).collect::<Vec<_>>());
        p.prioritize(&t[1], Some(5)).unwrap();
        p.prioritize(&t[3], Some(-1)).unwrap();
        p.prioritize(&t[4], Some(5)).unwrap();
        let order: Vec<String> = std::iter::from_fn(|| fetch(&*p).map(|c| c.task.id)).collect();
        assert_eq!(
            order,
            [
                t[1].clone(),
                t[4].clone(),
                t[3].clone(),
                t[0].clone(),
                t[2].clone()
            ]
        );
    }

    pub fn fetch_status_overrides_query_status(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"k": "a"}), json!({"k": "b"})]);
        p.reset_status(&Query::by_id(&t[1]), Status::PartDone)
            .unwrap();
        let opts = FetchOptions {
            query: q(r#"{"status": "done"}"#),
            ..FetchOptions::default()
        };
        let c = p.fetch_task(&opts).unwrap().unwrap();
        assert_eq!(
            c.task.id, t[0],
            "status argument (waiting) wins over the query's"
        );
        assert_eq!(c.from, Status::Waiting);
        let c2 = fetch_with(&*p, None, Status::PartDone).unwrap();
        assert_eq!(c2.task.id, t[1]);
        assert_eq!(c2.from, Status::PartDone);
        assert_eq!(c2.task.status, Status::Running);
        assert!(fetch(&*p).is_none());
    }

    pub fn fetch_query_restricts(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"m": "x"}), json!({"m": "y"})]);
        let opts = FetchOptions {
            query: q(&format!(r#"{{"_id": {{"$in": ["{}"]}}}}"#, t[1])),
            ..FetchOptions::default()
        };
        assert_eq!(p.fetch_task(&opts).unwrap().unwrap().task.id, t[1]);
        assert!(p.fetch_task(&opts).unwrap().is_none());
    }

    pub fn safe_fetch_error_puts_task_back(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let r = safe_fetch(&*p, &FetchOptions::default(), None, |_c: &Claim<'_>| {
            Err::<Value, _>("model exploded")
        });
        match r {
            Err(SafeFetchError::Work { id, status, error }) => {
                assert_eq!(id, t[0]);
                assert_eq!(status, Status::Waiting);
                assert_eq!(error, "model exploded");
            }
            other => panic!("expected a work error, got {other:?}"),
        }
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Waiting);
        assert_eq!(task.error.as_deref(), Some("model exploded"));
        assert_eq!(task.attempts, 1);
        assert!(task.lease_owner.is_none());

        let done = safe_fetch(&*p, &FetchOptions::default(), None, |c: &Claim<'_>| {
            Ok::<_, String>(json!({"got": c.task().def["x"].clone()}))
        })
        .unwrap();
        assert_eq!(done.as_deref(), Some(t[0].as_str()));
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Done);
        assert_eq!(task.res, Some(json!({"got": 1})));
    }

    pub fn safe_fetch_panic_puts_task_back(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let caught = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let _ = safe_fetch(
                &*p,
                &FetchOptions::default(),
                None,
                |_c: &Claim<'_>| -> Result<Value, String> { panic!("segfault-ish") },
            );
        }));
        assert!(caught.is_err());
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Waiting);
        assert_eq!(task.error.as_deref(), Some("worker panicked"));
        assert_eq!(task.attempts, 1);
    }

    pub fn dropped_claim_returns_and_gives_attempt_back(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        {
            let c = Claim::fetch(&*p, &FetchOptions::default())
                .unwrap()
                .unwrap();
            assert_eq!(c.id(), t[0]);
            assert_eq!(p.re_query(&t[0]).unwrap().status, Status::Running);
        }
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Waiting);
        assert_eq!(task.attempts, 0);
        assert!(task.error.is_none());
    }

    pub fn commit_null_status_means_done(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let c = fetch(&*p).unwrap();
        assert!(c.task.started_at.is_some());
        p.commit_task_res(&t[0], Some(&c.token), &json!({"ic": 0.05}), None)
            .unwrap();
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Done);
        assert_eq!(task.res, Some(json!({"ic": 0.05})));
        assert!(task.finished_at.is_some());
        assert!(task.lease_owner.is_none() && task.lease_expires_at.is_none());
    }

    pub fn return_keeps_res(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let c = fetch(&*p).unwrap();
        p.commit_task_res(
            &t[0],
            Some(&c.token),
            &json!("phase1"),
            Some(Status::PartDone),
        )
        .unwrap();
        let c = fetch_with(&*p, None, Status::PartDone).unwrap();
        assert_eq!(c.task.res, Some(json!("phase1")));
        p.return_task(&t[0], Some(&c.token), None).unwrap();
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(
            task.status,
            Status::PartDone,
            "back to the status it was claimed from"
        );
        assert_eq!(task.res, Some(json!("phase1")));
        p.return_task(&t[0], None, Some(Status::Waiting)).unwrap();
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Waiting);
        assert_eq!(task.res, Some(json!("phase1")));
    }

    pub fn reset_prioritize_remove(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &(0..4).map(|i| json!({"i": i})).collect::<Vec<_>>());
        let c0 = fetch_with(&*p, None, Status::Waiting).unwrap();
        let _c1 = fetch_with(&*p, None, Status::Waiting).unwrap();
        assert_eq!(p.reset_waiting(&Query::by_id(&t[0])).unwrap(), 1);
        assert_eq!(p.re_query(&t[0]).unwrap().status, Status::Waiting);
        assert_eq!(p.re_query(&t[1]).unwrap().status, Status::Running);
        assert_eq!(p.reset_waiting(&Query::all()).unwrap(), 1);
        let stat = p.task_stat(&Query::all()).unwrap();
        assert_eq!(stat.get(&Status::Waiting), Some(&4));
        assert_eq!(stat.len(), 1, "only statuses present: {stat:?}");
        // The reset task's old lease no longer writes.
        let err = p
            .commit_task_res(&t[0], Some(&c0.token), &json!(1), None)
            .unwrap_err();
        assert!(matches!(err, PoolError::LeaseLost { .. }), "{err}");

        assert_eq!(
            p.reset_status(&q(r#"{"def.i": {"$gte": 2}}"#), Status::Done)
                .unwrap(),
            2
        );
        let stat = p.task_stat(&Query::all()).unwrap();
        assert_eq!((stat[&Status::Waiting], stat[&Status::Done]), (2, 2));
        assert_eq!(p.task_stat(&q(r#"{"status": "done"}"#)).unwrap().len(), 1);

        p.prioritize(&t[2], Some(9)).unwrap();
        assert_eq!(p.re_query(&t[2]).unwrap().priority, Some(9));
        p.prioritize(&t[2], None).unwrap();
        assert_eq!(p.re_query(&t[2]).unwrap().priority, None);
        assert!(matches!(
            p.prioritize("999999999", Some(1)),
            Err(PoolError::NotFound { .. })
        ));

        assert_eq!(p.remove(&q(r#"{"status": "done"}"#)).unwrap(), 2);
        assert_eq!(
            ids(&p.query(&Query::all()).unwrap()),
            [t[0].clone(), t[1].clone()]
        );
        assert_eq!(p.remove(&Query::all()).unwrap(), 2);
        assert!(p.query(&Query::all()).unwrap().is_empty());
    }

    pub fn pools_are_separate_and_listed(url: &str) {
        let a = fresh(url);
        let b = open(url, &format!("{}-b", a.name())).unwrap();
        create(&*a, &[json!({"same": 1})]);
        create(&*b, &[json!({"same": 1})]);
        assert_eq!(a.query(&Query::all()).unwrap().len(), 1);
        assert_eq!(b.remove(&Query::all()).unwrap(), 1);
        assert_eq!(a.query(&Query::all()).unwrap().len(), 1);
        let names = a.list().unwrap();
        assert!(names.contains(&a.name().to_string()), "{names:?}");
        assert!(
            !names.contains(&b.name().to_string()),
            "an emptied pool is gone: {names:?}"
        );
    }

    pub fn unknown_ids_are_errors(url: &str) {
        let p = fresh(url);
        create(&*p, &[json!({"x": 1})]);
        for id in ["999999999", "not-an-id"] {
            assert!(
                matches!(p.re_query(id), Err(PoolError::NotFound { .. })),
                "{id}"
            );
            assert!(
                matches!(
                    p.return_task(id, None, None),
                    Err(PoolError::NotFound { .. })
                ),
                "{id}"
            );
            assert!(matches!(
                p.commit_task_res(id, None, &json!(1), None),
                Err(PoolError::NotFound { .. })
            ));
        }
    }

    pub fn query_operators(url: &str) {
        let p = fresh(url);
        let t = create(
            &*p,
            &[
                json!({"model": {"class": "LGB"}, "lr": 0.1, "n": 10, "tag": "a", "flag": true, "seg": [1, 2]}),
                json!({"model": {"class": "Linear"}, "lr": 0.2, "n": 20, "tag": "b", "flag": false}),
                json!({"model": {"class": "LGB"}, "n": "30", "tag": null}),
            ],
        );
        let c = fetch(&*p).unwrap();
        p.commit_task_res(&c.task.id, Some(&c.token), &json!({"ic": 0.3}), None)
            .unwrap();
        p.prioritize(&t[1], Some(2)).unwrap();
        let check = |query: &str, want: &[usize]| {
            let got = ids(&p.query(&q(query)).unwrap());
            let want: Vec<String> = want.iter().map(|&i| t[i].clone()).collect();
            assert_eq!(got, want, "query {query}");
        };
        check(r#"{"def.model.class": "LGB"}"#, &[0, 2]);
        check(r#"{"filter.model.class": "LGB"}"#, &[0, 2]);
        check(r#"{"def.model.class": {"$in": ["Linear", "X"]}}"#, &[1]);
        check(r#"{"def.model.class": {"$nin": ["Linear"]}}"#, &[0, 2]);
        check(r#"{"def.lr": {"$ne": 0.1}}"#, &[1, 2]);
        check(r#"{"def.lr": {"$exists": true}}"#, &[0, 1]);
        check(r#"{"def.lr": {"$exists": false}}"#, &[2]);
        // Numbers compare with numbers only: the string "30" is not > 15.
        check(r#"{"def.n": {"$gt": 15}}"#, &[1]);
        check(r#"{"def.n": {"$gte": 10, "$lt": 20}}"#, &[0]);
        check(r#"{"def.n": {"$lte": 10}}"#, &[0]);
        check(r#"{"def.n": "30"}"#, &[2]);
        check(r#"{"def.tag": null}"#, &[2]);
        check(r#"{"def.missing": null}"#, &[0, 1, 2]);
        check(r#"{"def.flag": true}"#, &[0]);
        check(r#"{"def.flag": false}"#, &[1]);
        check(r#"{"def.seg.1": 2}"#, &[0]);
        check(r#"{"def.tag": {"$gt": "a"}}"#, &[1]);
        check(r#"{"res.ic": {"$gt": 0.2}}"#, &[0]);
        check(r#"{"res": {"$exists": false}}"#, &[1, 2]);
        check(r#"{"res": null}"#, &[1, 2]);
        check(r#"{"status": "done"}"#, &[0]);
        check(r#"{"status": {"$in": ["waiting"]}}"#, &[1, 2]);
        check(r#"{"status": {"$ne": "waiting"}}"#, &[0]);
        check(r#"{"priority": 2}"#, &[1]);
        check(r#"{"priority": null}"#, &[0, 2]);
        check(r#"{"priority": {"$exists": true}}"#, &[1]);
        check(r#"{"attempts": {"$gte": 1}}"#, &[0]);
        check(&format!(r#"{{"_id": "{}"}}"#, t[2]), &[2]);
        check(
            &format!(r#"{{"_id": {{"$nin": ["{}", "bogus"]}}}}"#, t[2]),
            &[0, 1],
        );
        check(r#"{"_id": "bogus"}"#, &[]);
        check(r#"{"def.model.class": "LGB", "def.lr": 0.1}"#, &[0]);
        check(r#"{"def.tag": "x' OR '1'='1"}"#, &[]);
    }

    pub fn lease_expiry_reclaim_and_fencing(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1}), json!({"x": 2})]);
        p.prioritize(&t[1], Some(1)).unwrap();
        let short = Some(Duration::from_millis(300));
        let first = fetch_with(&*p, short, Status::Waiting).unwrap();
        assert_eq!(first.task.id, t[1]);
        assert_eq!(first.task.attempts, 1);
        assert!(first.task.lease_expires_at.is_some());
        std::thread::sleep(Duration::from_millis(1200));
        // The expired task is reclaimed before the never-started one.
        let second = fetch_with(&*p, short, Status::Waiting).unwrap();
        assert_eq!(second.task.id, t[1]);
        assert_eq!(second.task.attempts, 2);
        assert_ne!(second.token, first.token);
        assert!(
            second
                .task
                .error
                .as_deref()
                .unwrap_or("")
                .contains("lease expired")
        );
        // The zombie can neither renew, commit nor return.
        for err in [
            p.heartbeat(&t[1], &first.token, Duration::from_secs(60))
                .unwrap_err(),
            p.commit_task_res(&t[1], Some(&first.token), &json!("zombie"), None)
                .unwrap_err(),
            p.return_task(&t[1], Some(&first.token), None).unwrap_err(),
            p.fail_task(&t[1], &first.token, "zombie").unwrap_err(),
        ] {
            assert!(matches!(err, PoolError::LeaseLost { .. }), "{err}");
        }
        p.heartbeat(&t[1], &second.token, Duration::from_secs(60))
            .unwrap();
        p.commit_task_res(&t[1], Some(&second.token), &json!("fresh"), None)
            .unwrap();
        let task = p.re_query(&t[1]).unwrap();
        assert_eq!(task.res, Some(json!("fresh")));
        assert_eq!(task.status, Status::Done);
    }

    pub fn heartbeat_extends_lease(url: &str) {
        let p = fresh(url);
        create(&*p, &[json!({"x": 1})]);
        let c = fetch_with(&*p, Some(Duration::from_secs(5)), Status::Waiting).unwrap();
        let before = c.task.lease_expires_at.unwrap();
        p.heartbeat(&c.task.id, &c.token, Duration::from_secs(3600))
            .unwrap();
        let after = p.re_query(&c.task.id).unwrap().lease_expires_at.unwrap();
        assert!(
            after - before > chrono::Duration::seconds(3000),
            "{before} -> {after}"
        );
    }

    /// A short lease claimed after a long one still expires on time (SQLite checks leases only
    /// once the earliest known expiry has passed: a later, shorter lease must lower it).
    pub fn shorter_lease_after_longer_one_expires_on_time(url: &str) {
        let p = fresh(url);
        create(&*p, &[json!({"x": 1}), json!({"x": 2}), json!({"x": 3})]);
        let long = fetch_with(&*p, Some(Duration::from_secs(3600)), Status::Waiting).unwrap();
        let short = fetch_with(&*p, Some(Duration::from_millis(200)), Status::Waiting).unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let again = fetch_with(&*p, Some(Duration::from_secs(60)), Status::Waiting).unwrap();
        assert_eq!(
            again.task.id, short.task.id,
            "the expired short lease is taken over"
        );
        assert_eq!(again.task.attempts, 2);
        // The long lease is still held: the next claim is the last fresh task.
        let last = fetch_with(&*p, Some(Duration::from_secs(60)), Status::Waiting).unwrap();
        assert_ne!(last.task.id, long.task.id);
        assert_eq!(last.task.attempts, 1);
        p.commit_task_res(&long.task.id, Some(&long.token), &json!(1), None)
            .unwrap();
    }

    /// A renewed lease is not taken over when its first expiry passes, and the next expiry is
    /// still honoured after that check.
    pub fn renewed_lease_survives_its_first_expiry(url: &str) {
        let p = fresh(url);
        create(&*p, &[json!({"x": 1})]);
        let c = fetch_with(&*p, Some(Duration::from_millis(200)), Status::Waiting).unwrap();
        p.heartbeat(&c.task.id, &c.token, Duration::from_millis(1500))
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(fetch_with(&*p, Some(Duration::from_secs(60)), Status::Waiting).is_none());
        std::thread::sleep(Duration::from_millis(1500));
        let again = fetch_with(&*p, Some(Duration::from_secs(60)), Status::Waiting).unwrap();
        assert_eq!(again.task.id, c.task.id);
        assert!(matches!(
            p.commit_task_res(&c.task.id, Some(&c.token), &json!(1), None),
            Err(PoolError::LeaseLost { .. })
        ));
    }

    pub fn no_lease_runs_until_reset(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let c = fetch_with(&*p, None, Status::Waiting).unwrap();
        assert!(c.task.lease_expires_at.is_none());
        std::thread::sleep(Duration::from_millis(50));
        assert!(fetch(&*p).is_none(), "a lease-less claim never expires");
        p.reset_waiting(&Query::all()).unwrap();
        assert_eq!(fetch(&*p).unwrap().task.id, t[0]);
    }

    pub fn max_attempts_then_failed_then_retry(url: &str) {
        let p = fresh(url);
        let t = p
            .create_tasks(
                &[json!({"x": 1})],
                &CreateOptions {
                    max_attempts: Some(2),
                    ..CreateOptions::default()
                },
            )
            .unwrap()[0]
            .id
            .clone()
            .unwrap();
        let c = fetch(&*p).unwrap();
        assert_eq!(p.fail_task(&t, &c.token, "oom 1").unwrap(), Status::Waiting);
        let c = fetch(&*p).unwrap();
        assert_eq!(p.fail_task(&t, &c.token, "oom 2").unwrap(), Status::Failed);
        assert!(fetch(&*p).is_none());
        let task = p.re_query(&t).unwrap();
        assert_eq!((task.status, task.attempts), (Status::Failed, 2));
        assert_eq!(task.error.as_deref(), Some("oom 2"));
        assert!(task.finished_at.is_some());
        assert_eq!(p.retry(&Query::all()).unwrap(), 1);
        let task = p.re_query(&t).unwrap();
        assert_eq!((task.status, task.attempts), (Status::Waiting, 0));
        assert_eq!(
            task.error.as_deref(),
            Some("oom 2"),
            "the last error is kept"
        );
        assert!(fetch(&*p).is_some());
    }

    pub fn pool_max_attempts_and_lease_loss_count(url: &str) {
        let p = fresh(url);
        p.set_max_attempts(Some(1)).unwrap();
        let t = create(&*p, &[json!({"x": 1})]);
        let c = fetch_with(&*p, Some(Duration::from_millis(200)), Status::Waiting).unwrap();
        std::thread::sleep(Duration::from_millis(1000));
        assert!(
            fetch(&*p).is_none(),
            "the only attempt was lost: not claimable"
        );
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.status, Status::Failed);
        assert!(
            task.error.as_deref().unwrap().contains("lease expired"),
            "{:?}",
            task.error
        );
        assert!(matches!(
            p.commit_task_res(&t[0], Some(&c.token), &json!(1), None),
            Err(PoolError::LeaseLost { .. })
        ));
        assert_eq!(p.retry(&Query::all()).unwrap(), 1);
        let c = fetch(&*p).unwrap();
        assert_eq!(p.fail_task(&t[0], &c.token, "x").unwrap(), Status::Failed);
    }

    pub fn replace_task_keeps_identity(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"v": 1}), json!({"v": 2})]);
        p.replace_task(&t[0], &json!({"v": 10})).unwrap();
        let task = p.re_query(&t[0]).unwrap();
        assert_eq!(task.def, json!({"v": 10}));
        assert_eq!(
            create(&*p, &[json!({"v": 10})]),
            [t[0].clone()],
            "hash follows the definition"
        );
        assert!(matches!(
            p.replace_task(&t[0], &json!({"v": 2})),
            Err(PoolError::Invalid(_))
        ));
        assert!(matches!(
            p.replace_task("999999999", &json!({"v": 3})),
            Err(PoolError::NotFound { .. })
        ));
    }

    pub fn wait_reports_and_times_out(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"x": 1})]);
        let mut seen = Vec::new();
        let done = p
            .wait(
                &Query::all(),
                Duration::from_millis(10),
                Some(Duration::from_millis(30)),
                &mut |s| seen.push(s.clone()),
            )
            .unwrap();
        assert!(!done);
        assert_eq!(seen[0].get(&Status::Waiting), Some(&1));
        let c = fetch(&*p).unwrap();
        p.commit_task_res(&t[0], Some(&c.token), &json!(1), None)
            .unwrap();
        assert!(
            p.wait(&Query::all(), Duration::from_millis(10), None, &mut |_| {})
                .unwrap()
        );
    }

    pub fn concurrent_creators_and_claimers(url: &str) {
        let name = format!("test-{}", uuid::Uuid::new_v4().simple());
        let defs: Vec<Value> = (0..200).map(|i| json!({"i": i})).collect();
        let results: Vec<Vec<String>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let p = open(url, &name).unwrap();
                        create(&*p, &defs)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(
            results.windows(2).all(|w| w[0] == w[1]),
            "every creator sees the same ids"
        );
        let p = open(url, &name).unwrap();
        assert_eq!(p.query(&Query::all()).unwrap().len(), 200);

        let claimed: Vec<String> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let p = open(url, &name).unwrap();
                        let mut mine = Vec::new();
                        while let Some(c) = fetch(&*p) {
                            p.commit_task_res(&c.task.id, Some(&c.token), &json!("ok"), None)
                                .unwrap();
                            mine.push(c.task.id);
                        }
                        mine
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = claimed.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(claimed.len(), 200, "every task claimed");
        assert_eq!(sorted.len(), 200, "no task claimed twice");
        assert_eq!(
            p.task_stat(&Query::all()).unwrap().get(&Status::Done),
            Some(&200)
        );
        p.remove(&Query::all()).unwrap();
    }

    pub fn commit_and_fetch_commits_then_claims_in_order(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &(0..4).map(|i| json!({"i": i})).collect::<Vec<_>>());
        p.prioritize(&t[2], Some(7)).unwrap();
        let opts = FetchOptions::default();
        let first = fetch(&*p).unwrap();
        assert_eq!(first.task.id, t[2]);
        let second = p
            .commit_and_fetch(&first.task.id, &first.token, &json!({"r": 2}), None, &opts)
            .unwrap()
            .unwrap();
        assert_eq!(second.task.id, t[0]);
        assert_eq!(second.task.status, Status::Running);
        assert_eq!(second.task.attempts, 1);
        assert_eq!(second.from, Status::Waiting);
        assert_ne!(second.token, first.token);
        let done = p.re_query(&t[2]).unwrap();
        assert_eq!(done.status, Status::Done);
        assert_eq!(done.res, Some(json!({"r": 2})));
        assert!(done.lease_owner.is_none() && done.finished_at.is_some());

        // A stale token: the commit is refused and nothing is claimed.
        let err = p
            .commit_and_fetch(&first.task.id, &first.token, &json!(0), None, &opts)
            .unwrap_err();
        assert!(matches!(err, PoolError::LeaseLost { .. }), "{err}");
        let unknown = p
            .commit_and_fetch("999999999", &first.token, &json!(0), None, &opts)
            .unwrap_err();
        assert!(matches!(unknown, PoolError::NotFound { .. }), "{unknown}");
        assert_eq!(
            p.task_stat(&Query::all()).unwrap().get(&Status::Running),
            Some(&1)
        );

        // Committed back into the status claimed from, the task may be claimed again at once,
        // exactly as a commit followed by a fetch would.
        p.prioritize(&t[0], Some(9)).unwrap();
        let again = p
            .commit_and_fetch(
                &second.task.id,
                &second.token,
                &json!(1),
                Some(Status::Waiting),
                &opts,
            )
            .unwrap()
            .unwrap();
        assert_eq!(again.task.id, t[0]);
        assert_eq!(again.task.attempts, 2);
        assert_eq!(again.task.res, Some(json!(1)));

        // The last commit finds nothing left to claim.
        let c = p
            .commit_and_fetch(&again.task.id, &again.token, &json!(1), None, &opts)
            .unwrap()
            .unwrap();
        let d = p
            .commit_and_fetch(&c.task.id, &c.token, &json!(1), None, &opts)
            .unwrap()
            .unwrap();
        assert_eq!(
            [c.task.id.clone(), d.task.id.clone()],
            [t[1].clone(), t[3].clone()]
        );
        assert!(
            p.commit_and_fetch(&d.task.id, &d.token, &json!(1), None, &opts)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            p.task_stat(&Query::all()).unwrap().get(&Status::Done),
            Some(&4)
        );

        // Through the claim guard: the next claim is guarded in turn.
        let more = create(&*p, &[json!({"i": 10}), json!({"i": 11})]);
        let c = Claim::fetch(&*p, &opts).unwrap().unwrap();
        assert_eq!(c.id(), more[0]);
        let c = c
            .commit_and_fetch(&json!("a"), None, &opts)
            .unwrap()
            .unwrap();
        assert_eq!(c.id(), more[1]);
        drop(c);
        assert_eq!(p.re_query(&more[0]).unwrap().status, Status::Done);
        let returned = p.re_query(&more[1]).unwrap();
        assert_eq!(returned.status, Status::Waiting);
        assert_eq!(returned.attempts, 0);
    }

    /// Expands to one test per check above.
    /// A task re-prioritized while it runs keeps its lease: the holder's commit (and
    /// commit-and-fetch) still land, and the next claim follows the new priorities.
    pub fn prioritized_while_running_still_commits(url: &str) {
        let p = fresh(url);
        let t = create(&*p, &[json!({"n": 1}), json!({"n": 2}), json!({"n": 3})]);
        let first = fetch(&*p).unwrap();
        assert_eq!(first.task.id, t[0]);
        p.prioritize(&t[0], Some(7)).unwrap();
        p.prioritize(&t[2], Some(5)).unwrap();
        let next = p
            .commit_and_fetch(
                &first.task.id,
                &first.token,
                &json!("one"),
                None,
                &FetchOptions::default(),
            )
            .unwrap()
            .unwrap();
        assert_eq!(next.task.id, t[2], "priority 5 before no priority");
        assert_eq!(next.task.priority, Some(5));
        p.prioritize(&t[2], None).unwrap();
        p.commit_task_res(&next.task.id, Some(&next.token), &json!("three"), None)
            .unwrap();
        let done = p.re_query(&t[0]).unwrap();
        assert_eq!(
            (done.status, done.priority, done.res),
            (Status::Done, Some(7), Some(json!("one")))
        );
        let done = p.re_query(&t[2]).unwrap();
        assert_eq!((done.status, done.priority), (Status::Done, None));
        // A stale token is still refused after the key moved.
        assert!(matches!(
            p.commit_task_res(&next.task.id, Some(&first.token), &json!("x"), None),
            Err(PoolError::LeaseLost { .. })
        ));
    }

    pub fn overview_agrees_with_query(url: &str) {
        overview::overview_agrees_with_query(url)
    }

    pub fn oldest_waiting_among_many_priorities(url: &str) {
        overview::oldest_waiting_among_many_priorities(url)
    }

    pub fn task_page_sorts_filters_and_pages(url: &str) {
        overview::task_page_sorts_filters_and_pages(url)
    }

    pub fn done_durations_latest_first(url: &str) {
        overview::done_durations_latest_first(url)
    }

    /// `$in`/`$nin` over thousands of values and queries with many conditions: compiled so that no
    /// database parser recurses once per value (SQLite refuses trees deeper than 1,000).
    pub fn long_in_lists_and_many_conditions(url: &str) {
        let p = fresh(url);
        let n = 2500;
        let defs: Vec<Value> = (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    json!({"x": i, "tag": format!("t{i}")})
                } else {
                    json!({"x": i as f64 + 0.5, "tag": format!("t{i}"), "flag": i % 3 == 0})
                }
            })
            .collect();
        let t = create(&*p, &defs);
        let all_ids = json!(t);
        let found = p
            .query(&Query::parse(&json!({"_id": {"$in": all_ids}})).unwrap())
            .unwrap();
        assert_eq!(found.len(), n);
        let mut some: Vec<Value> = t[..n - 3].iter().map(|s| json!(s)).collect();
        some.push(json!("not-an-id"));
        let left = p
            .query(&Query::parse(&json!({"_id": {"$nin": some}})).unwrap())
            .unwrap();
        assert_eq!(ids(&left), t[n - 3..].to_vec());
        // Numbers (integers and floats), strings, booleans and null in one long list.
        let mut xs: Vec<Value> = (0..2000)
            .map(|i| {
                if i % 2 == 0 {
                    json!(i)
                } else {
                    json!(i as f64 + 0.5)
                }
            })
            .collect();
        xs.extend([json!("0"), json!(true), json!(null)]);
        let found = p
            .query(&Query::parse(&json!({"def.x": {"$in": xs}})).unwrap())
            .unwrap();
        assert_eq!(found.len(), 2000);
        let tags: Vec<Value> = (0..n).step_by(5).map(|i| json!(format!("t{i}"))).collect();
        let found = p
            .query(&Query::parse(&json!({"def.tag": {"$in": tags.clone()}})).unwrap())
            .unwrap();
        assert_eq!(found.len(), n / 5);
        let found = p
            .query(&Query::parse(&json!({"def.tag": {"$nin": tags}})).unwrap())
            .unwrap();
        assert_eq!(found.len(), n - n / 5);
        // A long list that only null can match: the tasks without `flag`.
        let mut nulls: Vec<Value> = (0..100).map(|i| json!(format!("none{i}"))).collect();
        nulls.push(json!(null));
        let found = p
            .query(&Query::parse(&json!({"def.flag": {"$in": nulls}})).unwrap())
            .unwrap();
        assert_eq!(found.len(), n / 2);
        let statuses: Vec<Value> = std::iter::repeat_n(json!("waiting"), 40).collect();
        assert_eq!(
            p.task_stat(&Query::parse(&json!({"status": {"$in": statuses}})).unwrap())
                .unwrap()
                .get(&Status::Waiting),
            Some(&(n as u64))
        );
        // Many conditions in one query.
        let mut many = serde_json::Map::new();
        for i in 0..900 {
            many.insert(format!("def.k{i}"), json!({"$exists": false}));
        }
        let found = p
            .query(&Query::parse(&Value::Object(many)).unwrap())
            .unwrap();
        assert_eq!(found.len(), n);
        // Claims with a long `$nin`, as a part_done -> part_done worker builds them.
        let taken: Vec<Value> = t[1..].iter().map(|s| json!(s)).collect();
        let claimed = p
            .fetch_task(&FetchOptions {
                query: Query::parse(&json!({"_id": {"$nin": taken}})).unwrap(),
                ..FetchOptions::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(claimed.task.id, t[0]);
    }
}
