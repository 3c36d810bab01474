//! XGBoost's C API, loaded at run time from the `libxgboost.so` that XGBoost's Python wheel
//! ships (or any other build of XGBoost >= 2.0): the calls qtask needs, each handle freed on
//! drop, each failure turned into XGBoost's own error text.
//!
//! Loading the library at run time, rather than linking it, keeps XGBoost's C++ build (minutes
//! on two cores) out of qtask's build, and lets `XGBModel` use the very library Qlib uses.

use std::ffi::{CStr, CString, c_char, c_float, c_int, c_void};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::ptr;
use std::sync::OnceLock;

use crate::error::{ModelError, Result};

/// Environment variable naming the XGBoost library (the file, or the folder holding it).
pub const LIB_ENV: &str = "QTASK_XGBOOST_LIB";
/// The library's file name on Linux.
const LIB_NAME: &str = "libxgboost.so";
/// The oldest XGBoost whose C API has every call used here.
const MIN_VERSION: (i32, i32) = (2, 0);

type Handle = *mut c_void;
type Ulong = u64;

/// The C functions qtask calls, resolved once.
struct Api {
    /// Keeps the library mapped for the process's lifetime.
    _lib: libloading::Library,
    path: PathBuf,
    version: (i32, i32, i32),
    last_error: unsafe extern "C" fn() -> *const c_char,
    dmatrix_from_dense: unsafe extern "C" fn(*const c_char, *const c_char, *mut Handle) -> c_int,
    dmatrix_set_info: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    dmatrix_free: unsafe extern "C" fn(Handle) -> c_int,
    booster_create: unsafe extern "C" fn(*const Handle, Ulong, *mut Handle) -> c_int,
    booster_free: unsafe extern "C" fn(Handle) -> c_int,
    booster_set_param: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    booster_update: unsafe extern "C" fn(Handle, c_int, Handle) -> c_int,
    booster_eval: unsafe extern "C" fn(
        Handle,
        c_int,
        *mut Handle,
        *mut *const c_char,
        Ulong,
        *mut *const c_char,
    ) -> c_int,
    booster_predict: unsafe extern "C" fn(
        Handle,
        Handle,
        *const c_char,
        *mut *const Ulong,
        *mut Ulong,
        *mut *const c_float,
    ) -> c_int,
    booster_save:
        unsafe extern "C" fn(Handle, *const c_char, *mut Ulong, *mut *const c_char) -> c_int,
    booster_load: unsafe extern "C" fn(Handle, *const c_void, Ulong) -> c_int,
    booster_rounds: unsafe extern "C" fn(Handle, *mut c_int) -> c_int,
    booster_num_feature: unsafe extern "C" fn(Handle, *mut Ulong) -> c_int,
    booster_set_attr: unsafe extern "C" fn(Handle, *const c_char, *const c_char) -> c_int,
    booster_feature_score: unsafe extern "C" fn(
        Handle,
        *const c_char,
        *mut Ulong,
        *mut *const *const c_char,
        *mut Ulong,
        *mut *const Ulong,
        *mut *const c_float,
    ) -> c_int,
}

static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();

fn api() -> Result<&'static Api> {
    API.get_or_init(load)
        .as_ref()
        .map_err(|e| ModelError::Xgboost(e.clone()))
}

/// Where the library is looked for, in order: `$QTASK_XGBOOST_LIB`, the `xgboost` package of
/// `$QTASK_PYTHON` (else `python3`), then the system's library path.
fn candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(v) = std::env::var_os(LIB_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(v);
        out.push(if p.is_dir() { p.join(LIB_NAME) } else { p });
        // An explicit choice is the only one tried: a silent fallback would hide a typo.
        return out;
    }
    let python = std::env::var("QTASK_PYTHON").unwrap_or_else(|_| "python3".into());
    // find_spec locates the package without importing it (importing xgboost takes seconds).
    let script = "import importlib.util as u, os\n\
                  s = u.find_spec('xgboost')\n\
                  print(os.path.join(list(s.submodule_search_locations)[0], 'lib') if s else '')";
    if let Ok(o) = Command::new(&python).args(["-c", script]).output()
        && o.status.success()
    {
        let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if !dir.is_empty() {
            out.push(Path::new(&dir).join(LIB_NAME));
        }
    }
    out.push(PathBuf::from(LIB_NAME));
    out
}

fn load() -> std::result::Result<Api, String> {
    let mut tried = Vec::new();
    for path in candidates() {
        // SAFETY: loading XGBoost runs its static initialisers, which have no preconditions.
        match unsafe { libloading::Library::new(&path) } {
            Ok(lib) => return resolve(lib, path),
            Err(e) => tried.push(format!("{}: {e}", path.display())),
        }
    }
    Err(format!(
        "XGBModel needs XGBoost's library (>= {}.{}), not found ({}); install it with \
         `pip install xgboost` (or `xgboost-cpu`) or set {LIB_ENV} to libxgboost.so",
        MIN_VERSION.0,
        MIN_VERSION.1,
        tried.join("; ")
    ))
}

fn resolve(lib: libloading::Library, path: PathBuf) -> std::result::Result<Api, String> {
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol's type is the one XGBoost's c_api.h declares for it.
            *unsafe { lib.get(concat!($name, "\0").as_bytes()) }
                .map_err(|e| format!("{}: no `{}` ({e})", path.display(), $name))?
        };
    }
    let version_fn: unsafe extern "C" fn(*mut c_int, *mut c_int, *mut c_int) =
        sym!("XGBoostVersion");
    let (mut major, mut minor, mut patch) = (0, 0, 0);
    // SAFETY: three valid out pointers.
    unsafe { version_fn(&mut major, &mut minor, &mut patch) };
    if (major, minor) < MIN_VERSION {
        return Err(format!(
            "{} is XGBoost {major}.{minor}.{patch}; XGBModel needs >= {}.{}",
            path.display(),
            MIN_VERSION.0,
            MIN_VERSION.1
        ));
    }
    Ok(Api {
        last_error: sym!("XGBGetLastError"),
        dmatrix_from_dense: sym!("XGDMatrixCreateFromDense"),
        dmatrix_set_info: sym!("XGDMatrixSetInfoFromInterface"),
        dmatrix_free: sym!("XGDMatrixFree"),
        booster_create: sym!("XGBoosterCreate"),
        booster_free: sym!("XGBoosterFree"),
        booster_set_param: sym!("XGBoosterSetParam"),
        booster_update: sym!("XGBoosterUpdateOneIter"),
        booster_eval: sym!("XGBoosterEvalOneIter"),
        booster_predict: sym!("XGBoosterPredictFromDMatrix"),
        booster_save: sym!("XGBoosterSaveModelToBuffer"),
        booster_load: sym!("XGBoosterLoadModelFromBuffer"),
        booster_rounds: sym!("XGBoosterBoostedRounds"),
        booster_num_feature: sym!("XGBoosterGetNumFeature"),
        booster_set_attr: sym!("XGBoosterSetAttr"),
        booster_feature_score: sym!("XGBoosterFeatureScore"),
        version: (major, minor, patch),
        path,
        _lib: lib,
    })
}

/// The loaded library's path and version (`major.minor.patch`).
pub fn library() -> Result<(PathBuf, String)> {
    let a = api()?;
    let (x, y, z) = a.version;
    Ok((a.path.clone(), format!("{x}.{y}.{z}")))
}

fn check(api: &Api, code: c_int) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: XGBGetLastError returns a thread-local, NUL-terminated buffer.
    let msg = unsafe { CStr::from_ptr((api.last_error)()) }
        .to_string_lossy()
        .into_owned();
    Err(ModelError::Xgboost(msg))
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| ModelError::Invalid(format!("NUL byte in `{s}`")))
}

/// numpy's `__array_interface__` of a float32 array, as XGBoost's Python package encodes it.
fn array_interface(ptr: *const f32, shape: &[usize]) -> String {
    let shape: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!(
        "{{\"data\": [{}, true], \"strides\": null, \"descr\": [[\"\", \"<f4\"]], \
         \"typestr\": \"<f4\", \"shape\": [{}], \"version\": 3}}",
        ptr as usize,
        shape.join(", ")
    )
}

/// An XGBoost `DMatrix` (XGBoost copies the values in; the caller's buffer may go).
pub struct DMatrix {
    api: &'static Api,
    handle: Handle,
}

impl DMatrix {
    /// A matrix of `rows` row-major float32 rows, NaN meaning missing, as
    /// `xgboost.DMatrix(numpy_array, label=...)` builds it.
    pub fn from_rows(x: &[f32], n_features: usize, label: Option<&[f32]>) -> Result<DMatrix> {
        let api = api()?;
        if n_features == 0 || !x.len().is_multiple_of(n_features) {
            return Err(ModelError::Invalid(format!(
                "{} values are not whole rows of {n_features} features",
                x.len()
            )));
        }
        let rows = x.len() / n_features;
        let data = cstring(&array_interface(x.as_ptr(), &[rows, n_features]))?;
        let config = cstring("{\"missing\": NaN, \"nthread\": -1, \"data_split_mode\": 0}")?;
        let mut handle = ptr::null_mut();
        // SAFETY: the interface describes `x` exactly; XGBoost copies it during the call.
        check(api, unsafe {
            (api.dmatrix_from_dense)(data.as_ptr(), config.as_ptr(), &mut handle)
        })?;
        let m = DMatrix { api, handle };
        if let Some(y) = label {
            if y.len() != rows {
                return Err(ModelError::Invalid(format!(
                    "{} labels for {rows} rows",
                    y.len()
                )));
            }
            let field = cstring("label")?;
            let inf = cstring(&array_interface(y.as_ptr(), &[rows]))?;
            // SAFETY: the interface describes `y` exactly; XGBoost copies it.
            check(api, unsafe {
                (api.dmatrix_set_info)(m.handle, field.as_ptr(), inf.as_ptr())
            })?;
        }
        Ok(m)
    }
}

impl Drop for DMatrix {
    fn drop(&mut self) {
        // SAFETY: the handle came from XGDMatrixCreateFromDense and is freed once.
        unsafe { (self.api.dmatrix_free)(self.handle) };
    }
}

/// An XGBoost booster.
pub struct Booster {
    api: &'static Api,
    handle: Handle,
}

// SAFETY: the handle is never aliased; XGBoost's prediction is thread-safe (its own lock and
// thread-local buffers), and training goes through &mut self.
unsafe impl Send for Booster {}
// SAFETY: see above.
unsafe impl Sync for Booster {}

impl Booster {
    /// A booster caching `dmats` (the training matrix first, then the evaluation sets), as
    /// `xgboost.Booster(params, [dtrain] + evals)` creates it.
    pub fn new(dmats: &[&DMatrix]) -> Result<Booster> {
        let api = api()?;
        let handles: Vec<Handle> = dmats.iter().map(|d| d.handle).collect();
        let mut handle = ptr::null_mut();
        // SAFETY: `handles` holds valid matrix handles; XGBoost keeps its own references.
        check(api, unsafe {
            (api.booster_create)(handles.as_ptr(), handles.len() as Ulong, &mut handle)
        })?;
        Ok(Booster { api, handle })
    }

    /// An empty booster to load a model into.
    fn empty() -> Result<Booster> {
        Booster::new(&[])
    }

    /// Sets one parameter (XGBoost parses the text).
    pub fn set_param(&mut self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstring(key)?, cstring(value)?);
        // SAFETY: valid handle and NUL-terminated strings.
        check(self.api, unsafe {
            (self.api.booster_set_param)(self.handle, k.as_ptr(), v.as_ptr())
        })
    }

    /// Sets a model attribute (saved with the model).
    pub fn set_attr(&mut self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstring(key)?, cstring(value)?);
        // SAFETY: valid handle and NUL-terminated strings.
        check(self.api, unsafe {
            (self.api.booster_set_attr)(self.handle, k.as_ptr(), v.as_ptr())
        })
    }

    /// One boosting round on `train`.
    pub fn update(&mut self, iter: usize, train: &DMatrix) -> Result<()> {
        // SAFETY: valid handles.
        check(self.api, unsafe {
            (self.api.booster_update)(self.handle, iter as c_int, train.handle)
        })
    }

    /// XGBoost's evaluation line for round `iter`, e.g. `[3]\ttrain-rmse:0.9\tvalid-rmse:1.0`.
    pub fn eval(&self, iter: usize, sets: &[(&DMatrix, &str)]) -> Result<String> {
        let mut handles: Vec<Handle> = sets.iter().map(|(d, _)| d.handle).collect();
        let names: Vec<CString> = sets
            .iter()
            .map(|(_, n)| cstring(n))
            .collect::<Result<_>>()?;
        let mut name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let mut out: *const c_char = ptr::null();
        // SAFETY: one handle and one name per set; the result is a thread-local string.
        check(self.api, unsafe {
            (self.api.booster_eval)(
                self.handle,
                iter as c_int,
                handles.as_mut_ptr(),
                name_ptrs.as_mut_ptr(),
                sets.len() as Ulong,
                &mut out,
            )
        })?;
        // SAFETY: XGBoost returned a NUL-terminated string valid until the next call.
        Ok(unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned())
    }

    /// Predictions (one per row) with every tree, as `Booster.predict(DMatrix)` makes them.
    pub fn predict(&self, m: &DMatrix) -> Result<Vec<f32>> {
        let config = cstring(
            "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, \
             \"strict_shape\": false}",
        )?;
        let mut shape: *const Ulong = ptr::null();
        let mut dim: Ulong = 0;
        let mut out: *const c_float = ptr::null();
        // SAFETY: valid handles and out pointers; the result buffer belongs to the booster.
        check(self.api, unsafe {
            (self.api.booster_predict)(
                self.handle,
                m.handle,
                config.as_ptr(),
                &mut shape,
                &mut dim,
                &mut out,
            )
        })?;
        // SAFETY: XGBoost returned `dim` extents; their product is the result's length.
        let extents = unsafe { std::slice::from_raw_parts(shape, dim as usize) };
        let n: u64 = extents.iter().product();
        if dim > 1 && extents[1..].iter().any(|&e| e != 1) {
            return Err(ModelError::Invalid(format!(
                "XGBModel: the objective gives {extents:?} outputs per row; qtask records one \
                 score per row"
            )));
        }
        // SAFETY: `out` holds `n` floats, valid until the next call on this booster.
        Ok(unsafe { std::slice::from_raw_parts(out, n as usize) }.to_vec())
    }

    /// The model in XGBoost's JSON format (what `Booster.save_model("model.json")` writes).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        let config = cstring("{\"format\": \"json\"}")?;
        let mut len: Ulong = 0;
        let mut out: *const c_char = ptr::null();
        // SAFETY: valid handle and out pointers.
        check(self.api, unsafe {
            (self.api.booster_save)(self.handle, config.as_ptr(), &mut len, &mut out)
        })?;
        // SAFETY: `out` holds `len` bytes, valid until the next call on this booster.
        Ok(unsafe { std::slice::from_raw_parts(out.cast::<u8>(), len as usize) }.to_vec())
    }

    /// Loads a model saved by [`Booster::to_json`] (or by XGBoost itself, JSON or UBJSON).
    pub fn from_bytes(bytes: &[u8]) -> Result<Booster> {
        let b = Booster::empty()?;
        // SAFETY: the buffer is valid for `len` bytes during the call.
        check(b.api, unsafe {
            (b.api.booster_load)(b.handle, bytes.as_ptr().cast(), bytes.len() as Ulong)
        })?;
        Ok(b)
    }

    /// Boosting rounds in the model.
    pub fn rounds(&self) -> Result<usize> {
        let mut n: c_int = 0;
        // SAFETY: valid handle and out pointer.
        check(self.api, unsafe {
            (self.api.booster_rounds)(self.handle, &mut n)
        })?;
        Ok(n.max(0) as usize)
    }

    /// Number of features the model reads.
    pub fn num_features(&self) -> Result<usize> {
        let mut n: Ulong = 0;
        // SAFETY: valid handle and out pointer.
        check(self.api, unsafe {
            (self.api.booster_num_feature)(self.handle, &mut n)
        })?;
        Ok(n as usize)
    }

    /// Per feature index, XGBoost's importance of `kind` (`weight`, `gain`, `total_gain`, ...);
    /// features no tree uses are absent, as in `Booster.get_score`.
    pub fn feature_score(&self, kind: &str) -> Result<Vec<(usize, f64)>> {
        let config = cstring(&format!("{{\"importance_type\": \"{kind}\"}}"))?;
        let (mut n, mut dim): (Ulong, Ulong) = (0, 0);
        let mut names: *const *const c_char = ptr::null();
        let mut shape: *const Ulong = ptr::null();
        let mut scores: *const c_float = ptr::null();
        // SAFETY: valid handle and out pointers; the results belong to the booster.
        check(self.api, unsafe {
            (self.api.booster_feature_score)(
                self.handle,
                config.as_ptr(),
                &mut n,
                &mut names,
                &mut dim,
                &mut shape,
                &mut scores,
            )
        })?;
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            // SAFETY: `n` names and `n` scores (single-output models: one score per feature).
            let (name, score) = unsafe {
                (
                    CStr::from_ptr(*names.add(i)).to_string_lossy().into_owned(),
                    *scores.add(i),
                )
            };
            // Matrices without feature names call their columns f0, f1, ...
            if let Some(idx) = name.strip_prefix('f').and_then(|s| s.parse().ok()) {
                out.push((idx, f64::from(score)));
            }
        }
        Ok(out)
    }
}

impl Drop for Booster {
    fn drop(&mut self) {
        // SAFETY: the handle came from XGBoosterCreate and is freed once.
        unsafe { (self.api.booster_free)(self.handle) };
    }
}
