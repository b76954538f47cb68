//! Tests of code that reads the process environment: the test runs again in a child process
//! with the variables it needs (a test never changes its own environment, which the other
//! tests of the binary share).

/// Runs the test `path` of this test binary alone, in a child process with `env` added, and
/// fails unless it ran and passed.
pub(crate) fn run_in_child(path: &str, env: &[(&str, &str)]) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", path])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{path} with {env:?}: {stdout}");
    assert!(stdout.contains("1 passed"), "{path} did not run: {stdout}");
}
