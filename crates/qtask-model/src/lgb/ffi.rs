//! A small safe layer over LightGBM's C API (`lightgbm3-sys`): just the calls qtask needs, each
//! handle freed on drop, each failure turned into LightGBM's own error text.

use std::ffi::{CStr, CString, c_char, c_void};
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

/// A LightGBM dataset built from a row-major `f32` matrix and its labels.
pub struct Dataset {
    handle: sys::DatasetHandle,
}

// SAFETY: a dataset handle is only used through &self/&mut self, never shared across threads at once.
unsafe impl Send for Dataset {}

impl Dataset {
    /// Builds a dataset from a row-major (or column-major) matrix; `reference` shares the bin
    /// boundaries of the training set (validation data must be binned like the data the trees
    /// were grown on).
    pub fn from_mat(
        x: &[f32],
        n_features: usize,
        row_major: bool,
        label: &[f32],
        params: &str,
        reference: Option<&Dataset>,
    ) -> Result<Dataset> {
        let rows = label.len();
        if n_features == 0 || x.len() != rows * n_features {
            return Err(ModelError::Invalid(format!(
                "feature matrix of {} values does not hold {rows} rows x {n_features} features",
                x.len()
            )));
        }
        let params = cstring(params)?;
        let mut handle = ptr::null_mut();
        // SAFETY: x holds rows*n_features f32 values (checked above); LightGBM copies what it needs.
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
        let field = cstring("label")?;
        // SAFETY: label has `rows` f32 values, the dataset was built with `rows` rows.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                ds.handle,
                field.as_ptr(),
                label.as_ptr() as *const c_void,
                rows as i32,
                DTYPE_FLOAT32,
            )
        })?;
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
        if n_features == 0 || x.len() % n_features != 0 {
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
                0,
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
