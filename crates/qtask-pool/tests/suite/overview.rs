//! Conformance of the dashboard reads (`overview`, `task_page`, `done_durations`): every
//! figure is checked against what `query` returns, sorted and counted here.

use std::time::{Duration, Instant};

use qtask_pool::{
    CreateOptions, FetchOptions, PageRequest, Query, SortKey, Status, Task, TaskPool,
};
use serde_json::json;

use super::fresh;

/// Expected claim-order key of a task: priority descending, none last, then id.
fn claim_key(t: &Task) -> (bool, i64, i64) {
    (
        t.priority.is_none(),
        -t.priority.unwrap_or(0),
        t.id.parse().unwrap(),
    )
}

fn id_num(t: &Task) -> i64 {
    t.id.parse().unwrap()
}

/// A pool with every status: priorities 5, none and -1, two expired leases, a live one,
/// done, part_done and failed tasks.
fn mixed(p: &dyn TaskPool) {
    let defs: Vec<_> = (0..12).map(|i| json!({"i": i})).collect();
    let ids: Vec<String> = p
        .create_tasks(&defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    p.prioritize(&ids[3], Some(5)).unwrap();
    p.prioritize(&ids[7], Some(5)).unwrap();
    p.prioritize(&ids[1], Some(-1)).unwrap();
    let claim = |lease: Option<Duration>| {
        p.fetch_task(&FetchOptions {
            lease,
            ..FetchOptions::default()
        })
        .unwrap()
        .unwrap()
    };
    // Two leases that expire, one that does not, one without a lease.
    let short1 = claim(Some(Duration::from_millis(1)));
    let short2 = claim(Some(Duration::from_millis(1)));
    let _live = claim(Some(Duration::from_secs(600)));
    let _none = claim(None);
    assert_ne!(short1.task.id, short2.task.id);
    // Done, part_done and failed ones.
    for status in [
        Some(Status::Done),
        Some(Status::Done),
        Some(Status::PartDone),
    ] {
        let c = claim(Some(Duration::from_secs(600)));
        p.commit_task_res(&c.task.id, Some(&c.token), &json!({"ok": 1}), status)
            .unwrap();
    }
    let c = claim(Some(Duration::from_secs(600)));
    p.reset_status(&Query::by_id(&c.task.id), Status::Failed)
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
}

pub fn overview_agrees_with_query(url: &str) {
    let p = fresh(url);
    let empty = p.overview().unwrap();
    assert!(empty.counts.is_empty(), "{empty:?}");
    assert_eq!(
        (empty.expired_leases, empty.oldest_waiting.clone()),
        (0, None)
    );

    mixed(&*p);
    let all = p.query(&Query::all()).unwrap();
    let ov = p.overview().unwrap();
    assert_eq!(ov.counts, p.task_stat(&Query::all()).unwrap());
    let mut expected = std::collections::BTreeMap::new();
    for t in &all {
        *expected.entry(t.status).or_insert(0u64) += 1;
    }
    assert_eq!(ov.counts, expected);
    assert_eq!(ov.counts[&Status::Running], 4);
    assert_eq!(
        ov.expired_leases, 2,
        "two of the four running leases ran out"
    );
    let oldest = all
        .iter()
        .filter(|t| t.status == Status::Waiting)
        .min_by_key(|t| id_num(t))
        .unwrap();
    let (id, created) = ov.oldest_waiting.expect("tasks wait");
    assert_eq!(
        (id.as_str(), created),
        (oldest.id.as_str(), oldest.created_at)
    );
}

pub fn oldest_waiting_among_many_priorities(url: &str) {
    let p = fresh(url);
    // More distinct priorities than the seek-per-priority path visits; the lowest id has
    // the lowest priority, so it is the last group in claim order.
    let defs: Vec<_> = (0..100).map(|i| json!({"i": i})).collect();
    let ids: Vec<String> = p
        .create_tasks(&defs, &CreateOptions::default())
        .unwrap()
        .into_iter()
        .map(|c| c.id.unwrap())
        .collect();
    for (k, id) in ids.iter().enumerate() {
        p.prioritize(id, Some(k as i64)).unwrap();
    }
    let first = p.fetch_task(&FetchOptions::default()).unwrap().unwrap();
    assert_eq!(first.task.id, ids[99]);
    let (oldest, _) = p.overview().unwrap().oldest_waiting.unwrap();
    assert_eq!(oldest, ids[0]);
    // And with few priorities, the oldest sits in the last group (no priority).
    p.prioritize(&ids[0], None).unwrap();
    for id in &ids[1..] {
        p.prioritize(id, Some(1)).unwrap();
    }
    let (oldest, _) = p.overview().unwrap().oldest_waiting.unwrap();
    assert_eq!(oldest, ids[0]);
}

pub fn task_page_sorts_filters_and_pages(url: &str) {
    let p = fresh(url);
    mixed(&*p);
    let all = p.query(&Query::all()).unwrap();
    let statuses = [
        None,
        Some(Status::Waiting),
        Some(Status::Running),
        Some(Status::Done),
        Some(Status::Failed),
    ];
    for status in statuses {
        for sort in [SortKey::Priority, SortKey::Created, SortKey::Attempts] {
            for descending in [false, true] {
                let mut expected: Vec<&Task> = all
                    .iter()
                    .filter(|t| status.is_none_or(|s| t.status == s))
                    .collect();
                match sort {
                    SortKey::Priority => expected.sort_by_key(|t| claim_key(t)),
                    SortKey::Created => expected.sort_by_key(|t| id_num(t)),
                    SortKey::Attempts => expected.sort_by_key(|t| (t.attempts, id_num(t))),
                }
                if descending {
                    expected.reverse();
                }
                let expected: Vec<&str> = expected.iter().map(|t| t.id.as_str()).collect();
                for (offset, limit) in [(0, 100), (1, 3), (5, 2), (50, 10)] {
                    let page = p
                        .task_page(&PageRequest {
                            status,
                            sort,
                            descending,
                            offset,
                            limit,
                        })
                        .unwrap();
                    let got: Vec<&str> = page.iter().map(|t| t.id.as_str()).collect();
                    let want: Vec<&str> = expected
                        .iter()
                        .skip(offset as usize)
                        .take(limit as usize)
                        .copied()
                        .collect();
                    assert_eq!(
                        got, want,
                        "{status:?} {sort:?} desc={descending} {offset}+{limit}"
                    );
                }
            }
        }
    }
    // Pages hold whole tasks, as `re_query` reads them.
    let one = p
        .task_page(&PageRequest {
            status: Some(Status::Done),
            limit: 1,
            ..PageRequest::default()
        })
        .unwrap();
    assert_eq!(one[0], p.re_query(&one[0].id).unwrap());
}

pub fn done_durations_latest_first(url: &str) {
    let p = fresh(url);
    let defs: Vec<_> = (0..4).map(|i| json!({"i": i})).collect();
    p.create_tasks(&defs, &CreateOptions::default()).unwrap();
    let start = Instant::now();
    let mut order = Vec::new();
    for (k, pause) in [5u64, 60, 5].into_iter().enumerate() {
        let c = p.fetch_task(&FetchOptions::default()).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(pause));
        let status = if k == 2 { Status::Failed } else { Status::Done };
        if status == Status::Done {
            p.commit_task_res(&c.task.id, Some(&c.token), &json!(1), None)
                .unwrap();
            order.push(pause);
        } else {
            p.reset_status(&Query::by_id(&c.task.id), status).unwrap();
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let d = p.done_durations(10).unwrap();
    assert_eq!(d.len(), 2, "done tasks only: {d:?}");
    // Latest first: the 60 ms task finished last.
    assert!(d[0] >= 0.055 && d[0] <= elapsed, "{d:?}");
    assert!(d[1] >= 0.0 && d[1] < d[0], "{d:?}");
    assert_eq!(p.done_durations(1).unwrap().len(), 1);
    assert_eq!(order, [5, 60]);
}
