//! The task store goes away and comes back: a private, throwaway PostgreSQL server (never the
//! shared one) is stopped under a running dashboard, which must say so and keep serving, then
//! started again, which the dashboard must notice by itself.
//!
//! Needs PostgreSQL's server binaries (`/usr/lib/postgresql/*/bin/initdb`, Debian's
//! `postgresql` package); skips with a visible note when they are missing. As root, the
//! server runs as the `postgres` user through `runuser` (PostgreSQL refuses to run as root).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::get;
use qtask_pool::Query;
use serde_json::json;

/// Says, past cargo's output capture, that a test did not run.
fn skip(why: &str) {
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED store_outage: {why}");
}

fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A private PostgreSQL server in a temporary folder, stopped on drop.
struct PrivatePg {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PrivatePg {
    fn cmd(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start() -> Result<PrivatePg, String> {
        let bin = pg_bin().ok_or("no PostgreSQL server binaries under /usr/lib/postgresql")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err("cannot hand the folder to the postgres user".into());
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let pg = PrivatePg {
            bin,
            dir,
            port,
            as_postgres,
        };
        let out = pg
            .cmd("initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(pg.data())
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        pg.ctl("start")?;
        Ok(pg)
    }

    fn ctl(&self, what: &str) -> Result<(), String> {
        let mut c = self.cmd("pg_ctl");
        c.arg(what).arg("-w").arg("-D").arg(self.data());
        if what == "start" {
            c.arg("-l")
                .arg(self.dir.path().join("log"))
                .arg("-o")
                .arg(format!(
                    "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                    self.port,
                    self.dir.path().display()
                ));
        } else {
            c.args(["-m", "fast"]);
        }
        let out = c
            .stdout(Stdio::null())
            .output()
            .map_err(|e| format!("pg_ctl {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?connect_timeout=3",
            self.port
        )
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if Path::new(&self.data().join("postmaster.pid")).exists() {
            let _ = self.ctl("stop");
        }
    }
}

#[test]
fn a_stopped_postgres_gives_a_clear_page_and_the_server_recovers() {
    let pg = match PrivatePg::start() {
        Ok(pg) => pg,
        Err(why) => return skip(&why),
    };
    let url = pg.url();
    let pool = qtask_pool::open(&url, "outage").unwrap();
    pool.create_tasks(
        &(0..5).map(|i| json!({"i": i})).collect::<Vec<_>>(),
        &Default::default(),
    )
    .unwrap();
    let mut config = qtask_web::Config::new(&url);
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.store_timeout = Duration::from_secs(5);
    let running = qtask_web::Server::new(config, None)
        .unwrap()
        .start()
        .unwrap();
    let addr = running.addr();
    let before = get(addr, "/api/pools");
    assert_eq!(before.status, 200, "{}", before.text());
    assert_eq!(before.json()[0]["counts"]["waiting"], 5);

    pg.ctl("stop").unwrap();
    for path in ["/", "/pools/outage", "/pools/outage/tasks/1"] {
        let r = get(addr, path);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        let page = r.text();
        assert!(page.contains("<h1>Store unreachable</h1>"), "{page}");
        assert!(page.contains("the task store is unreachable"), "{page}");
        assert!(page.contains("tries again"), "{page}");
    }
    let r = get(addr, "/api/pools");
    assert_eq!(r.status, 503);
    assert!(r.json()["error"].as_str().unwrap().contains("unreachable"));
    assert_eq!(get(addr, "/static/app.js").status, 200, "still serving");

    pg.ctl("start").unwrap();
    let start = Instant::now();
    let after = loop {
        let r = get(addr, "/api/pools");
        if r.status == 200 || start.elapsed() > Duration::from_secs(30) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(after.status, 200, "did not recover: {}", after.text());
    assert_eq!(after.json()[0]["counts"]["waiting"], 5);
    assert_eq!(get(addr, "/pools/outage").status, 200);
    let _ = pool.remove(&Query::all());
    running.stop();
}
