//! run_task against a real SQLite pool: transitions, failures, external commands, stop requests.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use qtask_pool::{CreateOptions, Query, Status, TaskPool};
use qtask_runner::{
    ExternalCommand, RunEvent, RunOptions, StopFlag, TaskContext, TaskError, run_task,
};
use serde_json::{Value, json};

fn pool(dir: &tempfile::TempDir, name: &str) -> Box<dyn TaskPool> {
    qtask_pool::open(
        &format!("sqlite:{}", dir.path().join("pool.db").display()),
        name,
    )
    .unwrap()
}

fn add(pool: &dyn TaskPool, defs: &[Value]) -> Vec<String> {
    pool.create_tasks(defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect()
}

fn no_events(_: &RunEvent) {}

fn double(_: &TaskContext, p: &Value) -> Result<Value, TaskError> {
    Ok(json!({"x": p["x"].as_i64().unwrap() * 2}))
}

#[test]
fn waiting_to_done_passes_def_and_stores_res() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let ids = add(&*p, &[json!({"x": 1}), json!({"x": 2})]);
    let s = run_task(
        &*p,
        &double,
        &RunOptions::default(),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap();
    assert_eq!(s.committed, 2);
    assert!(s.ran_any());
    for (id, want) in ids.iter().zip([2, 4]) {
        let t = p.re_query(id).unwrap();
        assert_eq!(t.status, Status::Done);
        assert_eq!(t.res, Some(json!({"x": want})));
    }
    // Nothing left: nothing runs.
    let s = run_task(
        &*p,
        &double,
        &RunOptions::default(),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap();
    assert!(!s.ran_any());
}

#[test]
fn part_done_phases_pass_res() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let ids = add(&*p, &[json!({"x": 3})]);
    let phase = |before, after| RunOptions {
        before_status: before,
        after_status: after,
        ..Default::default()
    };
    // waiting -> part_done (gets def), part_done -> part_done (gets res), part_done -> done.
    run_task(
        &*p,
        &double,
        &phase(Status::Waiting, Status::PartDone),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap();
    assert_eq!(p.re_query(&ids[0]).unwrap().status, Status::PartDone);
    assert_eq!(p.re_query(&ids[0]).unwrap().res, Some(json!({"x": 6})));
    run_task(
        &*p,
        &double,
        &phase(Status::PartDone, Status::PartDone),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap();
    assert_eq!(p.re_query(&ids[0]).unwrap().res, Some(json!({"x": 12})));
    run_task(
        &*p,
        &double,
        &phase(Status::PartDone, Status::Done),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap();
    let t = p.re_query(&ids[0]).unwrap();
    assert_eq!((t.status, t.res), (Status::Done, Some(json!({"x": 24}))));
    let err = run_task(
        &*p,
        &double,
        &phase(Status::Done, Status::Done),
        &StopFlag::new(),
        &no_events,
    )
    .unwrap_err();
    assert!(err.to_string().contains("waiting or part_done"), "{err}");
}

#[test]
fn a_poison_task_ends_failed_and_the_rest_are_done() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let defs: Vec<Value> = (0..10).map(|i| json!({"x": i})).collect();
    let ids = add(&*p, &defs);
    let calls = AtomicUsize::new(0);
    let func = |_: &TaskContext, v: &Value| {
        calls.fetch_add(1, Ordering::SeqCst);
        if v["x"] == 7 {
            Err(TaskError::new("seven is poison"))
        } else {
            Ok(v.clone())
        }
    };
    let events = Mutex::new(Vec::new());
    let record = |e: &RunEvent| events.lock().unwrap().push(e.clone());
    let s = run_task(
        &*p,
        &func,
        &RunOptions::default(),
        &StopFlag::new(),
        &record,
    )
    .unwrap();
    assert_eq!((s.committed, s.failed), (9, 3));
    assert_eq!(calls.load(Ordering::SeqCst), 12);
    let poison = p.re_query(&ids[7]).unwrap();
    assert_eq!(poison.status, Status::Failed);
    assert_eq!(poison.attempts, 3);
    assert_eq!(poison.error.as_deref(), Some("seven is poison"));
    let stat = p.task_stat(&Query::all()).unwrap();
    assert_eq!(stat.get(&Status::Done), Some(&9));
    let failed: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            RunEvent::Failed { status, .. } => Some(*status),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        vec![Status::Waiting, Status::Waiting, Status::Failed]
    );
}

#[test]
fn concurrency_and_max_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let defs: Vec<Value> = (0..40).map(|i| json!({"x": i})).collect();
    add(&*p, &defs);
    let opts = RunOptions {
        max_tasks: Some(15),
        concurrency: 4,
        ..Default::default()
    };
    let s = run_task(&*p, &double, &opts, &StopFlag::new(), &no_events).unwrap();
    assert_eq!(s.committed, 15);
    let opts = RunOptions {
        concurrency: 4,
        ..Default::default()
    };
    let s = run_task(&*p, &double, &opts, &StopFlag::new(), &no_events).unwrap();
    assert_eq!(s.committed, 25);
    assert_eq!(
        p.task_stat(&Query::all()).unwrap().get(&Status::Done),
        Some(&40)
    );
}

#[test]
fn a_stop_request_returns_the_task_in_hand() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let ids = add(&*p, &[json!({"x": 1}), json!({"x": 2})]);
    let stop = StopFlag::new();
    let cmd = ExternalCommand::parse("sleep 30").unwrap();
    let on_event = |e: &RunEvent| {
        if matches!(e, RunEvent::Claimed { .. }) {
            stop.stop();
        }
    };
    let s = run_task(&*p, &cmd, &RunOptions::default(), &stop, &on_event).unwrap();
    assert_eq!(s.returned, 1);
    for id in &ids {
        let t = p.re_query(id).unwrap();
        assert_eq!(t.status, Status::Waiting);
        // A voluntary return gives the attempt back.
        assert_eq!(t.attempts, 0, "{t:?}");
    }
}

#[test]
fn heartbeats_keep_a_short_lease_alive() {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "t");
    let ids = add(&*p, &[json!({"x": 1})]);
    let slow = |_: &TaskContext, v: &Value| {
        std::thread::sleep(Duration::from_millis(2500));
        Ok(v.clone())
    };
    let opts = RunOptions {
        lease: Some(Duration::from_secs(1)),
        ..Default::default()
    };
    let s = run_task(&*p, &slow, &opts, &StopFlag::new(), &no_events).unwrap();
    assert_eq!((s.committed, s.lease_lost), (1, 0));
    let t = p.re_query(&ids[0]).unwrap();
    assert_eq!((t.status, t.attempts), (Status::Done, 1));
}

fn run_cmd(cmd: &str, timeout: Option<Duration>) -> (qtask_pool::Task, Vec<RunEvent>) {
    let dir = tempfile::tempdir().unwrap();
    let p = pool(&dir, "ext");
    p.set_max_attempts(Some(1)).unwrap();
    let ids = add(&*p, &[json!({"x": 21, "name": "a b; $(rm -rf /)"})]);
    let exec = ExternalCommand::parse(cmd).unwrap().with_timeout(timeout);
    let events = Mutex::new(Vec::new());
    let record = |e: &RunEvent| events.lock().unwrap().push(e.clone());
    let opts = RunOptions {
        experiment: Some("exp1".into()),
        ..Default::default()
    };
    run_task(&*p, &exec, &opts, &StopFlag::new(), &record).unwrap();
    (p.re_query(&ids[0]).unwrap(), events.into_inner().unwrap())
}

#[test]
fn external_python_script_gets_stdin_and_env() {
    let script = r#"
import json, os, sys
task = json.load(sys.stdin)
print("some log line")
print(json.dumps({"double": task["x"] * 2, "name": task["name"], "id": os.environ["QTASK_TASK_ID"],
                  "pool": os.environ["QTASK_POOL"], "attempt": os.environ["QTASK_ATTEMPT"],
                  "exp": os.environ["QTASK_EXPERIMENT"]}))
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("train.py");
    std::fs::write(&path, script).unwrap();
    let (t, _) = run_cmd(&format!("python3 {}", path.display()), None);
    assert_eq!(t.status, Status::Done, "{t:?}");
    let res = t.res.unwrap();
    assert_eq!(res["double"], 42);
    assert_eq!(res["name"], "a b; $(rm -rf /)");
    assert_eq!(res["id"], json!(t.id));
    assert_eq!(res["pool"], "ext");
    assert_eq!(res["attempt"], "1");
    assert_eq!(res["exp"], "exp1");
}

#[test]
fn external_failures_keep_stderr_tail() {
    let (t, _) = run_cmd("sh -c 'echo boom >&2; exit 3'", None);
    assert_eq!(t.status, Status::Failed);
    let err = t.error.unwrap();
    assert!(
        err.contains("exited with status 3") && err.contains("boom"),
        "{err}"
    );

    let (t, _) = run_cmd("sh -c 'cat >/dev/null; echo not json'", None);
    assert_eq!(t.status, Status::Failed);
    assert!(t.error.unwrap().contains("did not print a JSON result"));

    let (t, _) = run_cmd("sleep 20", Some(Duration::from_millis(300)));
    assert_eq!(t.status, Status::Failed);
    assert!(t.error.unwrap().contains("timed out"));
    // A program that cannot be started is the worker's failure, not the task's: see
    // tests/environment.rs.
}

/// Delegates to a pool, counting how tasks get claimed.
struct Counting {
    inner: Box<dyn TaskPool>,
    fetches: AtomicUsize,
    chained: AtomicUsize,
}

impl TaskPool for Counting {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn create_tasks(
        &self,
        defs: &[Value],
        opts: &CreateOptions,
    ) -> qtask_pool::Result<Vec<qtask_pool::Created>> {
        self.inner.create_tasks(defs, opts)
    }
    fn fetch_task(
        &self,
        opts: &qtask_pool::FetchOptions,
    ) -> qtask_pool::Result<Option<qtask_pool::ClaimedTask>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        self.inner.fetch_task(opts)
    }
    fn commit_and_fetch(
        &self,
        id: &str,
        token: &str,
        res: &Value,
        status: Option<Status>,
        opts: &qtask_pool::FetchOptions,
    ) -> qtask_pool::Result<Option<qtask_pool::ClaimedTask>> {
        self.chained.fetch_add(1, Ordering::SeqCst);
        self.inner.commit_and_fetch(id, token, res, status, opts)
    }
    fn heartbeat(&self, id: &str, token: &str, lease: Duration) -> qtask_pool::Result<()> {
        self.inner.heartbeat(id, token, lease)
    }
    fn commit_task_res(
        &self,
        id: &str,
        token: Option<&str>,
        res: &Value,
        status: Option<Status>,
    ) -> qtask_pool::Result<()> {
        self.inner.commit_task_res(id, token, res, status)
    }
    fn return_task(
        &self,
        id: &str,
        token: Option<&str>,
        status: Option<Status>,
    ) -> qtask_pool::Result<()> {
        self.inner.return_task(id, token, status)
    }
    fn fail_task(&self, id: &str, token: &str, error: &str) -> qtask_pool::Result<Status> {
        self.inner.fail_task(id, token, error)
    }
    fn query(&self, query: &Query) -> qtask_pool::Result<Vec<qtask_pool::Task>> {
        self.inner.query(query)
    }
    fn re_query(&self, id: &str) -> qtask_pool::Result<qtask_pool::Task> {
        self.inner.re_query(id)
    }
    fn task_stat(&self, query: &Query) -> qtask_pool::Result<qtask_pool::TaskStat> {
        self.inner.task_stat(query)
    }
    fn reset_status(&self, query: &Query, status: Status) -> qtask_pool::Result<u64> {
        self.inner.reset_status(query, status)
    }
    fn prioritize(&self, id: &str, priority: Option<i64>) -> qtask_pool::Result<()> {
        self.inner.prioritize(id, priority)
    }
    fn remove(&self, query: &Query) -> qtask_pool::Result<u64> {
        self.inner.remove(query)
    }
    fn retry(&self, query: &Query) -> qtask_pool::Result<u64> {
        self.inner.retry(query)
    }
    fn replace_task(&self, id: &str, def: &Value) -> qtask_pool::Result<()> {
        self.inner.replace_task(id, def)
    }
    fn set_max_attempts(&self, max_attempts: Option<u32>) -> qtask_pool::Result<()> {
        self.inner.set_max_attempts(max_attempts)
    }
    fn list(&self) -> qtask_pool::Result<Vec<String>> {
        self.inner.list()
    }
}

fn counting(dir: &tempfile::TempDir) -> Counting {
    Counting {
        inner: pool(dir, "t"),
        fetches: AtomicUsize::new(0),
        chained: AtomicUsize::new(0),
    }
}

#[test]
fn with_a_lease_each_commit_claims_the_next_task_but_never_past_max_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let p = counting(&dir);
    let defs: Vec<Value> = (0..12).map(|i| json!({"x": i})).collect();
    let ids = add(&p, &defs);
    let opts = RunOptions {
        max_tasks: Some(5),
        ..Default::default()
    };
    let s = run_task(&p, &double, &opts, &StopFlag::new(), &no_events).unwrap();
    assert_eq!(s.committed, 5);
    // One plain claim, then four commits that each claimed the next; the fifth commit is
    // alone, as a sixth task would not run.
    assert_eq!(p.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(p.chained.load(Ordering::SeqCst), 4);
    for (i, id) in ids.iter().enumerate() {
        let t = p.re_query(id).unwrap();
        if i < 5 {
            assert_eq!(t.status, Status::Done);
            assert_eq!(t.res, Some(json!({"x": 2 * i as i64})));
        } else {
            // Never claimed, not even claimed and handed back.
            assert_eq!(t.status, Status::Waiting, "{t:?}");
            assert!(t.started_at.is_none() && t.attempts == 0, "{t:?}");
        }
    }

    // Without a lease a lost reply could orphan the task claimed with a commit: plain claims.
    let p = counting(&dir);
    let opts = RunOptions {
        lease: None,
        ..Default::default()
    };
    let s = run_task(&p, &double, &opts, &StopFlag::new(), &no_events).unwrap();
    assert_eq!(s.committed, 7);
    assert_eq!(p.chained.load(Ordering::SeqCst), 0);
    assert_eq!(p.fetches.load(Ordering::SeqCst), 8);
}
