//! An on-disk cache of computed feature frames, so the tasks of a rolling study compute their
//! features once instead of once per task.
//!
//! The key is a hash of everything the result depends on: the expressions and names, the
//! instruments with their listed ranges, the date range, and a fingerprint (size and
//! modification time) of the calendar and every feature file read. Changing the data folder
//! therefore changes the key; stale entries are simply never read again.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::binfile::write_atomic;
use crate::error::Result;
use crate::expr::Program;
use crate::features::{Query, compute, resolve_range};
use crate::frame::Frame;
use crate::provider::Provider;

const MAGIC: &[u8; 4] = b"QTF1";

/// A folder of cached feature frames.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Header {
    symbols: Vec<String>,
    columns: Vec<String>,
    rows: usize,
}

fn stamp(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(m) => {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            format!("{}:{t}", m.len())
        }
        Err(_) => "missing".into(),
    }
}

impl FeatureCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FeatureCache { dir: dir.into() }
    }

    /// `$QTASK_CACHE_DIR/features`, else `$XDG_CACHE_HOME/qtask/features`, else
    /// `~/.cache/qtask/features`; `None` when no home is known.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(d) = std::env::var_os("QTASK_CACHE_DIR") {
            return Some(PathBuf::from(d).join("features"));
        }
        if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
            return Some(PathBuf::from(d).join("qtask/features"));
        }
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/qtask/features"))
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache key of a computation.
    pub fn key(&self, provider: &Provider, program: &Program, q: &Query) -> Result<String> {
        let (s, e) = resolve_range(provider, q)?;
        let cal = provider.calendar();
        let listed = provider.list_instruments(&q.instruments, cal[s], cal[e - 1])?;
        let mut files = vec![stamp(&provider.root().join("calendars/day.txt"))];
        for l in &listed {
            let dir = provider.symbol_dir(&l.symbol);
            for f in program.fields() {
                files.push(stamp(&dir.join(format!("{f}.day.bin"))));
            }
            // PIT files are stamped only when P(...) is used, so other keys are unchanged.
            for q in program.pit_queries() {
                for f in q.program.fields() {
                    let (data, index) = crate::pit::pit_paths(provider.root(), &l.symbol, f);
                    files.push(stamp(&data));
                    files.push(stamp(&index));
                }
            }
        }
        let root = provider
            .root()
            .canonicalize()
            .unwrap_or_else(|_| provider.root().to_path_buf());
        let spans: Vec<(String, Vec<(NaiveDate, NaiveDate)>)> = listed
            .iter()
            .map(|l| (l.symbol.clone(), l.spans.clone()))
            .collect();
        let key = serde_json::json!({
            "version": 1,
            "root": root,
            "names": program.names(),
            "exprs": program.exprs(),
            "instruments": spans,
            "range": [cal[s], cal[e - 1]],
            "files": files,
        });
        let digest = Sha256::digest(key.to_string().as_bytes());
        Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Returns the cached frame for this computation, computing and storing it on a miss.
    pub fn get_or_compute(
        &self,
        provider: &Provider,
        program: &Program,
        q: &Query,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Frame> {
        let path = self
            .dir
            .join(format!("{}.qtf", self.key(provider, program, q)?));
        if let Ok(bytes) = std::fs::read(&path)
            && let Some(frame) = decode(&bytes)
        {
            return Ok(frame);
        }
        let frame = compute(provider, program, q, tick)?;
        write_atomic(&path, &encode(&frame))?;
        Ok(frame)
    }

    /// Whether a computation is already cached.
    pub fn contains(&self, provider: &Provider, program: &Program, q: &Query) -> Result<bool> {
        Ok(self
            .dir
            .join(format!("{}.qtf", self.key(provider, program, q)?))
            .exists())
    }
}

fn encode(f: &Frame) -> Vec<u8> {
    let header = serde_json::to_vec(&Header {
        symbols: f.symbols.clone(),
        columns: f.columns.clone(),
        rows: f.len(),
    })
    .unwrap_or_default();
    let mut out = Vec::with_capacity(16 + header.len() + f.len() * (8 + 4 * f.data.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for &i in &f.inst {
        out.extend_from_slice(&i.to_le_bytes());
    }
    for d in &f.datetime {
        out.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
    }
    for c in &f.data {
        for v in c {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

/// `None` for anything malformed: a damaged entry is recomputed, never trusted.
fn decode(b: &[u8]) -> Option<Frame> {
    if b.get(..4)? != MAGIC {
        return None;
    }
    let hl = u64::from_le_bytes(b.get(4..12)?.try_into().ok()?) as usize;
    let header: Header = serde_json::from_slice(b.get(12..12 + hl)?).ok()?;
    let n = header.rows;
    let mut at = 12 + hl;
    let word = |at: &mut usize| -> Option<[u8; 4]> {
        let w = b.get(*at..*at + 4)?.try_into().ok()?;
        *at += 4;
        Some(w)
    };
    let mut inst = Vec::with_capacity(n);
    for _ in 0..n {
        let i = u32::from_le_bytes(word(&mut at)?);
        if i as usize >= header.symbols.len() {
            return None;
        }
        inst.push(i);
    }
    let mut datetime = Vec::with_capacity(n);
    for _ in 0..n {
        datetime.push(NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(
            word(&mut at)?,
        ))?);
    }
    let mut data = Vec::with_capacity(header.columns.len());
    for _ in 0..header.columns.len() {
        let mut c = Vec::with_capacity(n);
        for _ in 0..n {
            c.push(f32::from_le_bytes(word(&mut at)?));
        }
        data.push(c);
    }
    if at != b.len() {
        return None;
    }
    Some(Frame {
        symbols: header.symbols,
        inst,
        datetime,
        columns: header.columns,
        data,
    })
}
