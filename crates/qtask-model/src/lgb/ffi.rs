//! A small safe layer over LightGBM's C API (`lightgbm3-sys`): just the calls qtask needs, each
//! handle freed on drop, each failure turned into LightGBM's own error text.

use std::ffi::{CStr, CString, c_char, c_void};
use std::io::Write;
use std::ptr;

use lightgbm3_sys as sys;

use crate::error::{ModelError, Result};

// Constants of LightGBM's c_api.h (stable since 2.x).
const DTYPE_FLOAT32: i32 = 0;
const PREDICT_NORMAL: i32 = 0;

fn check(code: i32) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: LGBM_GetLastError returns a pointer to a thread-local, NUL-terminated buffer.
    let msg = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) }
        .to_string_lossy()
        .into_owned();
    Err(ModelError::Lightgbm(msg))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| ModelError::Invalid(format!("NUL byte in `{s}`")))
}

/// LightGBM's `kZeroThreshold` (a `float` literal widened to `double`): smaller magnitudes are
/// zeros, which its samples leave out.
const ZERO_THRESHOLD: f64 = 1e-35_f32 as f64;

/// Rows pushed to LightGBM per call (a small row-major buffer, not a copy of the data).
const PUSH_CHUNK: usize = 4096;

/// A LightGBM dataset (binned features and labels).
pub struct Dataset {
    handle: sys::DatasetHandle,
}

// SAFETY: a dataset handle is only used through &self/&mut self, never shared across threads at once.
unsafe impl Send for Dataset {}

/// LightGBM's bin-construction sample of a matrix: per column, the sampled values that are not
/// zero (NaN included) and their positions in the sample, as `LGBM_DatasetCreateFromMat`
/// builds it. A column with no zero (the usual case) has the positions `0..n`: those columns
/// share one array, which LightGBM only reads.
#[derive(Default)]
struct Sample {
    values: Vec<Vec<f64>>,
    /// `None`: every sampled value kept, the positions are `identity`.
    positions: Vec<Option<Vec<i32>>>,
    identity: Vec<i32>,
}

impl Sample {
    fn new(n: usize) -> Sample {
        Sample {
            identity: (0..n as i32).collect(),
            ..Sample::default()
        }
    }

    fn push_column(&mut self, values: impl Iterator<Item = f32> + Clone) {
        let keep = |v: &f64| v.abs() > ZERO_THRESHOLD || v.is_nan();
        let widened = values.map(f64::from);
        let n = widened.clone().filter(keep).count();
        let mut vals = Vec::with_capacity(n);
        if n == self.identity.len() {
            vals.extend(widened);
            self.positions.push(None);
        } else {
            let mut pos = Vec::with_capacity(n);
            for (i, v) in widened.enumerate().filter(|(_, v)| keep(v)) {
                vals.push(v);
                pos.push(i as i32);
            }
            self.positions.push(Some(pos));
        }
        self.values.push(vals);
    }
}

/// Feature columns parked in an unnamed temporary file while LightGBM bins them: its bin
/// sample (12 bytes per value) is the largest allocation of a study, and the columns
/// (4 bytes per value) need not be in memory beside it. The page cache is not the process's
/// memory, and the file disappears when dropped.
struct Spilled {
    file: std::fs::File,
    rows: usize,
    cols: usize,
}

impl Spilled {
    fn new(columns: Vec<Vec<f32>>, rows: usize) -> std::io::Result<Spilled> {
        let cols = columns.len();
        let mut w = std::io::BufWriter::new(tempfile::tempfile()?);
        for col in columns {
            // Each column is freed as soon as it is written.
            w.write_all(f32_bytes(&col))?;
        }
        let file = w.into_inner().map_err(|e| e.into_error())?;
        Ok(Spilled { file, rows, cols })
    }

    /// Rows `r0..r0 + out.len()` of column `c`, read straight into `out`.
    fn read(&self, c: usize, r0: usize, out: &mut [f32]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        // SAFETY: any byte pattern is a valid f32, and the byte view covers exactly `out`.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), size_of_val(out))
        };
        self.file
            .read_exact_at(bytes, ((c * self.rows + r0) * 4) as u64)
    }
}

/// The bytes of `v` in memory order (the spill file is read back by the same process).
fn f32_bytes(v: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding or invalid bit patterns; the byte view covers the same memory.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast(), size_of_val(v)) }
}

fn spill_error(e: std::io::Error) -> ModelError {
    ModelError::Invalid(format!(
        "LightGBM: cannot park the feature matrix in a temporary file ({}): {e}",
        std::env::temp_dir().display()
    ))
}

/// The rows LightGBM samples to find bins (`bin_construct_sample_cnt`, `data_random_seed`).
fn sample_indices(rows: i32, params: &CStr) -> Result<Vec<i32>> {
    let mut n = 0;
    // SAFETY: valid parameter string and out pointer.
    check(unsafe { sys::LGBM_GetSampleCount(rows, params.as_ptr(), &mut n) })?;
    let mut out = vec![0i32; n.max(0) as usize];
    let mut len = 0;
    // SAFETY: `out` has the room LightGBM asked for.
    check(unsafe {
        sys::LGBM_SampleIndices(rows, params.as_ptr(), out.as_mut_ptr().cast(), &mut len)
    })?;
    out.truncate(len.max(0) as usize);
    Ok(out)
}

impl Dataset {
    /// Builds a dataset from feature columns (each `label.len()` long), as
    /// `LGBM_DatasetCreateFromMat` would from the same matrix (same sample, same bins, same
    /// rows), holding less memory: the columns wait in a temporary file while LightGBM bins
    /// them and are pushed back in small row-major chunks. `reference` shares the bin
    /// boundaries of the training set (validation data must be binned like the data the trees
    /// were grown on).
    pub fn from_columns(
        columns: Vec<Vec<f32>>,
        label: &[f32],
        params: &str,
        reference: Option<&Dataset>,
    ) -> Result<Dataset> {
        let rows = label.len();
        if columns.is_empty() || columns.iter().any(|c| c.len() != rows) {
            return Err(ModelError::Invalid(format!(
                "{} feature columns are not all {rows} rows long",
                columns.len()
            )));
        }
        let n_rows = i32::try_from(rows)
            .map_err(|_| ModelError::Invalid(format!("{rows} rows are too many for LightGBM")))?;
        let params = cstring(params)?;
        let spilled = Spilled::new(columns, rows).map_err(spill_error)?;
        crate::memory::release_freed();
        let mut handle = ptr::null_mut();
        match reference {
            // SAFETY: a valid reference handle and out pointer.
            Some(r) => check(unsafe {
                sys::LGBM_DatasetCreateByReference(r.handle, i64::from(n_rows), &mut handle)
            })?,
            None => {
                let picked = sample_indices(n_rows, &params)?;
                let mut s = Sample::new(picked.len());
                let mut col = vec![0f32; rows];
                for c in 0..spilled.cols {
                    spilled.read(c, 0, &mut col).map_err(spill_error)?;
                    s.push_column(picked.iter().map(|&i| col[i as usize]));
                }
                drop(col);
                let mut value_ptrs: Vec<*mut f64> =
                    s.values.iter_mut().map(|v| v.as_mut_ptr()).collect();
                let identity = s.identity.as_mut_ptr();
                let mut pos_ptrs: Vec<*mut i32> = s
                    .positions
                    .iter_mut()
                    .map(|p| p.as_mut().map_or(identity, |v| v.as_mut_ptr()))
                    .collect();
                let counts: Vec<i32> = s.values.iter().map(|v| v.len() as i32).collect();
                // SAFETY: one pointer and one count per column, each pointing at `count`
                // values/positions; LightGBM reads them during the call only. It sorts a
                // column's values in place (hence `*mut`) but never writes positions, so
                // columns may share the identity array.
                check(unsafe {
                    sys::LGBM_DatasetCreateFromSampledColumn(
                        value_ptrs.as_mut_ptr(),
                        pos_ptrs.as_mut_ptr(),
                        counts.len() as i32,
                        counts.as_ptr(),
                        picked.len() as i32,
                        n_rows,
                        i64::from(n_rows),
                        params.as_ptr(),
                        &mut handle,
                    )
                })?;
            }
        }
        let ds = Dataset { handle };
        ds.push_rows(&spilled)?;
        ds.set_label(label)?;
        Ok(ds)
    }

    /// Pushes every row, a chunk at a time; LightGBM finishes the dataset after the last one.
    fn push_rows(&self, data: &Spilled) -> Result<()> {
        let (rows, cols) = (data.rows, data.cols);
        let mut column = vec![0f32; PUSH_CHUNK.min(rows)];
        let mut chunk = vec![0f32; PUSH_CHUNK.min(rows) * cols];
        for r0 in (0..rows).step_by(PUSH_CHUNK) {
            let n = PUSH_CHUNK.min(rows - r0);
            for c in 0..cols {
                data.read(c, r0, &mut column[..n]).map_err(spill_error)?;
                for (r, &v) in column[..n].iter().enumerate() {
                    chunk[r * cols + c] = v;
                }
            }
            // SAFETY: `chunk` holds n rows x cols f32 values, row-major; rows r0..r0+n exist.
            check(unsafe {
                sys::LGBM_DatasetPushRows(
                    self.handle,
                    chunk.as_ptr() as *const c_void,
                    DTYPE_FLOAT32,
                    n as i32,
                    cols as i32,
                    r0 as i32,
                )
            })?;
        }
        Ok(())
    }

    fn set_label(&self, label: &[f32]) -> Result<()> {
        self.set_field("label", label)
    }

    /// Per-row weights (LightGBM's `weight` field).
    pub fn set_weight(&self, weight: &[f32]) -> Result<()> {
        self.set_field("weight", weight)
    }

    fn set_field(&self, name: &str, values: &[f32]) -> Result<()> {
        let field = cstring(name)?;
        // SAFETY: `values` is valid for its length; LightGBM checks it against the rows and
        // copies it.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                self.handle,
                field.as_ptr(),
                values.as_ptr() as *const c_void,
                values.len() as i32,
                DTYPE_FLOAT32,
            )
        })
    }

    /// Builds a dataset from a row-major (or column-major) matrix with
    /// `LGBM_DatasetCreateFromMat`, as LightGBM's Python package does: the reference the
    /// tests hold [`Dataset::from_columns`] to.
    #[cfg(test)]
    pub fn from_mat(
        x: &[f32],
        n_features: usize,
        row_major: bool,
        label: &[f32],
        params: &str,
        reference: Option<&Dataset>,
    ) -> Result<Dataset> {
        let rows = label.len();
        assert_eq!(x.len(), rows * n_features);
        let params = cstring(params)?;
        let mut handle = ptr::null_mut();
        // SAFETY: x holds rows*n_features f32 values; LightGBM copies what it needs.
        check(unsafe {
            sys::LGBM_DatasetCreateFromMat(
                x.as_ptr() as *const c_void,
                DTYPE_FLOAT32,
                rows as i32,
                n_features as i32,
                i32::from(row_major),
                params.as_ptr(),
                reference.map_or(ptr::null_mut(), |r| r.handle),
                &mut handle,
            )
        })?;
        let ds = Dataset { handle };
        ds.set_label(label)?;
        Ok(ds)
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_DatasetCreateFromMat and is freed once.
        unsafe { sys::LGBM_DatasetFree(self.handle) };
    }
}

/// A LightGBM booster (the trees).
pub struct Booster {
    handle: sys::BoosterHandle,
}

// SAFETY: LightGBM boosters are safe to use from one thread at a time; we never alias the handle.
unsafe impl Send for Booster {}
// SAFETY: prediction and serialisation are read-only in LightGBM (guarded by its own lock).
unsafe impl Sync for Booster {}

impl Booster {
    /// A booster that will train on `train`.
    pub fn new(train: &Dataset, params: &str) -> Result<Booster> {
        let params = cstring(params)?;
        let mut handle = ptr::null_mut();
        // SAFETY: the dataset handle is valid for the call; LightGBM keeps its own reference.
        check(unsafe { sys::LGBM_BoosterCreate(train.handle, params.as_ptr(), &mut handle) })?;
        Ok(Booster { handle })
    }

    /// Loads a booster from LightGBM's model text.
    pub fn from_model_text(text: &str) -> Result<Booster> {
        let text = cstring(text)?;
        let mut iters = 0;
        let mut handle = ptr::null_mut();
        // SAFETY: text is NUL-terminated; the out pointers are valid.
        check(unsafe {
            sys::LGBM_BoosterLoadModelFromString(text.as_ptr(), &mut iters, &mut handle)
        })?;
        Ok(Booster { handle })
    }

    /// Adds a validation set (evaluated after each iteration, index 1, 2, ...).
    pub fn add_valid(&mut self, valid: &Dataset) -> Result<()> {
        // SAFETY: both handles are valid.
        check(unsafe { sys::LGBM_BoosterAddValidData(self.handle, valid.handle) })
    }

    /// One boosting iteration; `true` when no further split could be made.
    pub fn update(&mut self) -> Result<bool> {
        let mut finished = 0;
        // SAFETY: valid handle and out pointer.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(self.handle, &mut finished) })?;
        Ok(finished != 0)
    }

    /// The metric values on dataset `idx` (0 = training data, 1.. = validation sets).
    pub fn eval(&self, idx: i32) -> Result<Vec<f64>> {
        let mut n = 0;
        // SAFETY: valid handle and out pointer.
        check(unsafe { sys::LGBM_BoosterGetEvalCounts(self.handle, &mut n) })?;
        let mut out = vec![0f64; n.max(0) as usize];
        let mut len = 0;
        // SAFETY: out has room for the `n` metrics LightGBM reported.
        check(unsafe { sys::LGBM_BoosterGetEval(self.handle, idx, &mut len, out.as_mut_ptr()) })?;
        out.truncate(len.max(0) as usize);
        Ok(out)
    }

    /// The names of the metrics `eval` returns.
    pub fn eval_names(&self) -> Result<Vec<String>> {
        let mut n = 0;
        // SAFETY: valid handle and out pointer.
        check(unsafe { sys::LGBM_BoosterGetEvalCounts(self.handle, &mut n) })?;
        let n = n.max(0) as usize;
        const CAP: usize = 128;
        let mut bufs = vec![vec![0u8; CAP]; n];
        let mut ptrs: Vec<*mut c_char> = bufs.iter_mut().map(|b| b.as_mut_ptr().cast()).collect();
        let (mut len, mut needed) = (0, 0);
        // SAFETY: `n` buffers of CAP bytes each, as declared.
        check(unsafe {
            sys::LGBM_BoosterGetEvalNames(
                self.handle,
                n as i32,
                &mut len,
                CAP,
                &mut needed,
                ptrs.as_mut_ptr(),
            )
        })?;
        Ok(bufs
            .iter()
            .take(len.max(0) as usize)
            .map(|b| {
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                String::from_utf8_lossy(&b[..end]).into_owned()
            })
            .collect())
    }

    /// Number of features the booster was trained on.
    pub fn num_features(&self) -> Result<usize> {
        let mut n = 0;
        // SAFETY: valid handle and out pointer.
        check(unsafe { sys::LGBM_BoosterGetNumFeature(self.handle, &mut n) })?;
        Ok(n.max(0) as usize)
    }

    /// Number of boosting iterations done (or loaded).
    pub fn current_iteration(&self) -> Result<usize> {
        let mut n = 0;
        // SAFETY: valid handle and out pointer.
        check(unsafe { sys::LGBM_BoosterGetCurrentIteration(self.handle, &mut n) })?;
        Ok(n.max(0) as usize)
    }

    /// Predictions for row-major `x` using the first `num_iteration` trees (0 = all).
    pub fn predict(&self, x: &[f32], n_features: usize, num_iteration: usize) -> Result<Vec<f64>> {
        self.predict_range(x, n_features, 0, num_iteration)
    }

    /// Predictions for row-major `x` using `num_iteration` trees (0 = all) from
    /// `start_iteration` on.
    pub fn predict_range(
        &self,
        x: &[f32],
        n_features: usize,
        start_iteration: usize,
        num_iteration: usize,
    ) -> Result<Vec<f64>> {
        if n_features == 0 || !x.len().is_multiple_of(n_features) {
            return Err(ModelError::Invalid(format!(
                "{} values are not whole rows of {n_features} features",
                x.len()
            )));
        }
        let rows = x.len() / n_features;
        if rows == 0 {
            return Ok(Vec::new());
        }
        let params = cstring("")?;
        let mut out = vec![0f64; rows];
        let mut len: i64 = 0;
        // SAFETY: x holds rows*n_features values; out holds one value per row (single-output
        // objectives only: regression and binary, checked by the caller's config).
        check(unsafe {
            sys::LGBM_BoosterPredictForMat(
                self.handle,
                x.as_ptr() as *const c_void,
                DTYPE_FLOAT32,
                rows as i32,
                n_features as i32,
                1,
                PREDICT_NORMAL,
                start_iteration as i32,
                num_iteration as i32,
                params.as_ptr(),
                &mut len,
                out.as_mut_ptr(),
            )
        })?;
        out.truncate(len.max(0) as usize);
        Ok(out)
    }

    /// LightGBM's model text holding the first `num_iteration` trees (0 = all).
    pub fn model_text(&self, num_iteration: usize) -> Result<String> {
        let mut needed: i64 = 0;
        // SAFETY: a zero-length buffer asks for the size only.
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.handle,
                0,
                num_iteration as i32,
                0,
                0,
                &mut needed,
                ptr::null_mut(),
            )
        })?;
        let mut buf = vec![0u8; needed.max(1) as usize];
        // SAFETY: buf has the size LightGBM asked for.
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                self.handle,
                0,
                num_iteration as i32,
                0,
                buf.len() as i64,
                &mut needed,
                buf.as_mut_ptr().cast(),
            )
        })?;
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        buf.truncate(end);
        String::from_utf8(buf).map_err(|_| ModelError::Lightgbm("model text is not UTF-8".into()))
    }

    /// Feature importance over the first `num_iteration` trees (0 = all): `gain` or split counts.
    pub fn importance(&self, num_iteration: usize, gain: bool) -> Result<Vec<f64>> {
        let mut out = vec![0f64; self.num_features()?];
        // SAFETY: out holds one value per feature.
        check(unsafe {
            sys::LGBM_BoosterFeatureImportance(
                self.handle,
                num_iteration as i32,
                i32::from(gain),
                out.as_mut_ptr(),
            )
        })?;
        Ok(out)
    }
}

impl Drop for Booster {
    fn drop(&mut self) {
        // SAFETY: the handle came from LightGBM and is freed once.
        unsafe { sys::LGBM_BoosterFree(self.handle) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns with what binning treats specially: NaNs, exact zeros, values below LightGBM's
    /// zero threshold, a constant column and a mostly-zero column (bundling candidates).
    fn columns(rows: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32
        };
        let mut cols: Vec<Vec<f32>> = (0..6).map(|_| Vec::with_capacity(rows)).collect();
        let mut y = Vec::with_capacity(rows);
        for r in 0..rows {
            let a = next() * 2.0 - 1.0;
            let b = next();
            cols[0].push(if r % 17 == 0 { f32::NAN } else { a });
            cols[1].push(if r % 5 == 0 { 0.0 } else { b });
            cols[2].push(if r % 3 == 0 { 1e-38 } else { next() - 0.5 });
            cols[3].push(7.0);
            cols[4].push(if r % 50 == 0 { next() } else { 0.0 });
            cols[5].push((r % 11) as f32);
            y.push(a * 0.7 + b * 0.3 + next() * 0.1);
        }
        (cols, y)
    }

    fn row_major(cols: &[Vec<f32>]) -> Vec<f32> {
        let rows = cols[0].len();
        (0..rows)
            .flat_map(|r| cols.iter().map(move |c| c[r]))
            .collect()
    }

    fn model_text(train: Dataset, valid: Option<Dataset>, params: &str) -> String {
        let mut b = Booster::new(&train, params).unwrap();
        if let Some(v) = &valid {
            b.add_valid(v).unwrap();
        }
        for _ in 0..15 {
            b.update().unwrap();
        }
        let evals = valid.as_ref().map(|_| b.eval(1).unwrap());
        format!("{evals:?}\n{}", b.model_text(0).unwrap())
    }

    fn both_paths(params: &str) -> (String, String) {
        let (cols, y) = columns(3000);
        let (vcols, vy) = columns(700);
        let mat = Dataset::from_mat(&row_major(&cols), cols.len(), true, &y, params, None).unwrap();
        let vmat = Dataset::from_mat(
            &row_major(&vcols),
            vcols.len(),
            true,
            &vy,
            params,
            Some(&mat),
        )
        .unwrap();
        let expected = model_text(mat, Some(vmat), params);
        let ds = Dataset::from_columns(cols, &y, params, None).unwrap();
        let vds = Dataset::from_columns(vcols, &vy, params, Some(&ds)).unwrap();
        (model_text(ds, Some(vds), params), expected)
    }

    #[test]
    fn columns_build_the_dataset_create_from_mat_builds() {
        let params =
            "objective=regression num_leaves=15 min_data_in_leaf=5 verbosity=-1 num_threads=1";
        let (got, expected) = both_paths(params);
        assert!(expected.contains("Tree=14"), "{expected}");
        assert_eq!(got, expected);
    }

    #[test]
    fn columns_sample_the_rows_lightgbm_samples() {
        // Fewer sample rows than data rows: the bins come from LightGBM's own random sample.
        let params = "objective=regression num_leaves=15 min_data_in_leaf=5 verbosity=-1 \
                      num_threads=1 bin_construct_sample_cnt=500 data_random_seed=3";
        let (got, expected) = both_paths(params);
        assert_eq!(got, expected);
    }

    #[test]
    fn ragged_columns_are_refused() {
        let err = Dataset::from_columns(vec![vec![1.0; 3], vec![1.0; 2]], &[0.0; 3], "", None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("not all 3 rows"), "{err}");
    }
}
