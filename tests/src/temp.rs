//! A test's own temporary directory, removed when it is dropped (also when the test fails).

use std::path::PathBuf;

/// `$TMPDIR/multinet-test-<name>-<pid>`, created on [`TempDir::new`], removed on drop: the
/// process id keeps parallel test binaries apart, `name` the tests of one binary.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates the directory (panics when it cannot: the test cannot run).
    pub fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("multinet-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
