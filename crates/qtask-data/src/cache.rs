//! An on-disk cache of computed feature frames, so the tasks of a rolling study compute their
//! features once instead of once per task.
//!
//! The key is a hash of everything the result depends on: the expressions and names, the
//! instruments with their listed ranges, the date range, and a fingerprint (size and
//! modification time) of the calendar and every feature file read. Changing the data folder
//! therefore changes the key; stale entries are simply never read again.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
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
            let dir = provider.symbol_dir(&l.symbol)?;
            for f in program.fields() {
                files.push(stamp(&dir.join(format!("{f}.day.bin"))));
            }
            // PIT files are stamped only when P(...) is used, so other keys are unchanged.
            for q in program.pit_queries() {
                for f in q.program.fields() {
                    let (data, index) = crate::pit::pit_paths(provider.root(), &l.symbol, f)?;
                    files.push(stamp(&data));
                    files.push(stamp(&index));
                }
            }
        }
        for (sym, f) in program.foreign_fields() {
            files.push(stamp(
                &provider.symbol_dir(sym)?.join(format!("{f}.day.bin")),
            ));
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
    ///
    /// Entries run to the calendar's last day whatever the query's end: the windows of a
    /// rolling study differ in their handler's end day, and they share one entry. That is exact:
    /// a row depends on days up to its own plus the program's look-ahead, which a query ending
    /// on that row reads as well, and on nothing after.
    pub fn get_or_compute(
        &self,
        provider: &Provider,
        program: &Program,
        q: &Query,
        tick: &(dyn Fn() + Sync),
    ) -> Result<Frame> {
        let path = self.entry(provider, program, q)?;
        let frame = match std::fs::File::open(&path)
            .ok()
            .and_then(|file| decode_from(&mut std::io::BufReader::new(file)))
        {
            Some(frame) => frame,
            None => {
                let frame = compute(provider, program, &to_calendar_end(q), tick)?;
                write_streamed(&path, &frame)?;
                frame
            }
        };
        let (_, e) = resolve_range(provider, q)?;
        Ok(until(frame, provider.calendar()[e - 1]))
    }

    /// Whether a computation is already cached.
    pub fn contains(&self, provider: &Provider, program: &Program, q: &Query) -> Result<bool> {
        Ok(self.entry(provider, program, q)?.exists())
    }

    /// The file of the entry that serves `q` (its query run to the calendar's end).
    fn entry(&self, provider: &Provider, program: &Program, q: &Query) -> Result<PathBuf> {
        let key = self.key(provider, program, &to_calendar_end(q))?;
        Ok(self.dir.join(format!("{key}.qtf")))
    }
}

/// `q` run to the calendar's last day: what a cache entry holds.
fn to_calendar_end(q: &Query) -> Query {
    Query {
        end: None,
        ..q.clone()
    }
}

/// The rows of `frame` dated `last` or earlier, keeping only the instruments that have some:
/// what computing the query up to `last` gives.
fn until(mut frame: Frame, last: NaiveDate) -> Frame {
    if frame.datetime.iter().any(|d| *d > last) {
        let dates = frame.datetime.clone();
        frame.filter_rows(|r| dates[r] <= last);
    }
    // Renumber the instruments that still have rows (an instrument listed only later has none).
    let mut new_index = vec![u32::MAX; frame.symbols.len()];
    let mut symbols = Vec::new();
    for i in frame.inst.iter_mut() {
        let slot = &mut new_index[*i as usize];
        if *slot == u32::MAX {
            *slot = symbols.len() as u32;
            symbols.push(std::mem::take(&mut frame.symbols[*i as usize]));
        }
        *i = *slot;
    }
    frame.symbols = symbols;
    frame
}

/// Writes the frame to a temporary file renamed over `path`, so readers never see half a file.
fn write_streamed(path: &Path, frame: &Frame) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
    encode_to(frame, &mut std::io::BufWriter::new(file)).map_err(|e| DataError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| DataError::io(path, e))
}

/// Values per chunk when streaming columns (bounds the temporary byte buffer).
const CHUNK: usize = 1 << 16;

/// Streams a frame to `w` (no full in-memory copy: a study's frame is its largest object).
fn encode_to(f: &Frame, w: &mut impl Write) -> std::io::Result<()> {
    let header = serde_json::to_vec(&Header {
        symbols: f.symbols.clone(),
        columns: f.columns.clone(),
        rows: f.len(),
    })
    .unwrap_or_default();
    w.write_all(MAGIC)?;
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(&header)?;
    let mut buf = Vec::with_capacity(CHUNK * 4);
    let mut put = |w: &mut dyn Write, words: &mut dyn Iterator<Item = [u8; 4]>| {
        loop {
            buf.clear();
            for _ in 0..CHUNK {
                let Some(word) = words.next() else { break };
                buf.extend_from_slice(&word);
            }
            if buf.is_empty() {
                return Ok::<(), std::io::Error>(());
            }
            w.write_all(&buf)?;
        }
    };
    put(w, &mut f.inst.iter().map(|i| i.to_le_bytes()))?;
    put(
        w,
        &mut f
            .datetime
            .iter()
            .map(|d| d.num_days_from_ce().to_le_bytes()),
    )?;
    for c in &f.data {
        put(w, &mut c.iter().map(|v| v.to_le_bytes()))?;
    }
    w.flush()
}

/// Reads `n` little-endian words, converting each; `None` on a short read or a bad value.
fn read_words<T>(
    r: &mut impl Read,
    n: usize,
    mut conv: impl FnMut([u8; 4]) -> Option<T>,
) -> Option<Vec<T>> {
    let mut out = Vec::with_capacity(n);
    let mut buf = vec![0u8; CHUNK.min(n.max(1)) * 4];
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        r.read_exact(&mut buf[..k * 4]).ok()?;
        for w in buf[..k * 4].chunks_exact(4) {
            out.push(conv(w.try_into().ok()?)?);
        }
        left -= k;
    }
    Some(out)
}

/// `None` for anything malformed: a damaged entry is recomputed, never trusted.
fn decode_from(r: &mut impl Read) -> Option<Frame> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic).ok()?;
    if &magic != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    r.read_exact(&mut len).ok()?;
    let hl = u64::from_le_bytes(len) as usize;
    if hl > 1 << 30 {
        return None;
    }
    let mut hb = vec![0u8; hl];
    r.read_exact(&mut hb).ok()?;
    let header: Header = serde_json::from_slice(&hb).ok()?;
    let n = header.rows;
    let n_sym = header.symbols.len();
    let inst = read_words(r, n, |w| {
        let i = u32::from_le_bytes(w);
        ((i as usize) < n_sym).then_some(i)
    })?;
    let datetime = read_words(r, n, |w| {
        NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(w))
    })?;
    let mut data = Vec::with_capacity(header.columns.len());
    for _ in 0..header.columns.len() {
        data.push(read_words(r, n, |w| Some(f32::from_le_bytes(w)))?);
    }
    // Trailing bytes mean a different layout: do not trust it.
    if r.read(&mut [0u8; 1]).ok()? != 0 {
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
