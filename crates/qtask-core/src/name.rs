//! The one rule for names that become file or folder names: instrument symbols, market names,
//! field names, CSV column names, artifact path segments. Everything that turns a name into a
//! path checks it here, when writing and when reading alike, so no name can leave its folder.

/// The longest name accepted, in bytes: file systems allow 255, and qtask adds suffixes
/// (`.day.bin`, `.index`) and temporary-file decorations to some names.
pub const MAX_NAME_BYTES: usize = 200;

/// Why a name cannot become a file or folder name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {shown}: {why}")]
pub struct NameError {
    /// What the name is (`instrument`, `field`, `column`, ...).
    pub kind: String,
    /// The name as shown in the message (quoted, escaped).
    pub shown: String,
    /// What the rule refuses about it.
    pub why: String,
}

/// Checks that `name` is one plain, visible path component: not empty, not starting with `.`
/// (hidden files, `..`, and qtask's temporary files start with one), no `/` or `\`, no control
/// character, at most [`MAX_NAME_BYTES`] bytes. `kind` names what the name is in the error
/// (`instrument`, `field`, ...).
pub fn check_name(kind: &str, name: &str) -> Result<(), NameError> {
    let refuse = |why: String| {
        Err(NameError {
            kind: kind.to_string(),
            shown: format!("{name:?}"),
            why,
        })
    };
    if name.is_empty() {
        return refuse("a name cannot be empty".into());
    }
    if name == "." || name == ".." {
        return refuse("`.` and `..` name folders, not files".into());
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '/' | '\\')) {
        return refuse(format!(
            "{c:?} is not allowed in a name that becomes a file name (it would leave its folder)"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return refuse(format!("control character {c:?} is not allowed"));
    }
    if name.starts_with('.') {
        return refuse("a name cannot start with `.` (hidden files and temporary files do)".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse(format!(
            "{} bytes is longer than the {MAX_NAME_BYTES} a file name may have here",
            name.len()
        ));
    }
    Ok(())
}

/// Checks every `/`-separated segment of a relative path (artifact paths, metric keys) with
/// [`check_name`].
pub fn check_relative_path(kind: &str, path: &str) -> Result<(), NameError> {
    if path.starts_with('/') {
        return Err(NameError {
            kind: kind.to_string(),
            shown: format!("{path:?}"),
            why: "must be relative (it would leave its folder)".into(),
        });
    }
    for seg in path.split('/') {
        check_name(kind, seg).map_err(|e| NameError {
            shown: format!("{path:?}"),
            why: format!("segment {}: {}", e.shown, e.why),
            ..e
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        for ok in [
            "SH600000",
            "close",
            "roewa_q",
            "BRK.B",
            "^GSPC",
            "000001.SZ",
            "a b",
            "Rank IC",
            "x..y",
        ] {
            assert!(check_name("instrument", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_that_leave_their_folder_are_refused() {
        for bad in [
            "", ".", "..", "../x", "a/b", "/etc", "a\\b", "a\0b", "a\nb", "\u{7f}", ".hidden",
        ] {
            assert!(check_name("instrument", bad).is_err(), "{bad:?}");
        }
        let e = check_name("instrument", "../../etc/passwd").unwrap_err();
        assert_eq!(
            e.to_string(),
            "instrument \"../../etc/passwd\": '/' is not allowed in a name that becomes a file \
             name (it would leave its folder)"
        );
        assert!(check_name("field", &"x".repeat(201)).is_err());
        assert!(check_name("field", &"x".repeat(200)).is_ok());
    }

    #[test]
    fn relative_paths_check_each_segment() {
        assert!(check_relative_path("artifact", "sig_analysis/ic.parquet").is_ok());
        for bad in ["/abs", "a//b", "a/../b", "a/./b", "a/"] {
            assert!(check_relative_path("artifact", bad).is_err(), "{bad}");
        }
        let e = check_relative_path("artifact", "a/../b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "artifact \"a/../b\": segment \"..\": `.` and `..` name folders, not files"
        );
    }
}
