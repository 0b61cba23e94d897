//! Build facts INFO server reports as Redis does: the git commit the
//! binary was built from (`redis_git_sha1`, `00000000` outside a git
//! checkout, as Redis prints it), whether the tree had changes
//! (`redis_git_dirty`), and an id of the build (`redis_build_id`).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let sha = git(&["rev-parse", "--short=8", "HEAD"]).filter(|s| s.len() == 8).unwrap_or_else(|| "00000000".into());
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    // FNV-1a over what identifies the build.
    let facts = format!("{} {sha} {dirty} {}", env!("CARGO_PKG_VERSION"), std::env::var("TARGET").unwrap_or_default());
    let id = facts.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    println!("cargo:rustc-env=DAMSELFLY_GIT_SHA1={sha}");
    println!("cargo:rustc-env=DAMSELFLY_GIT_DIRTY={}", u8::from(dirty));
    println!("cargo:rustc-env=DAMSELFLY_BUILD_ID={id:x}");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/index");
    }
    println!("cargo:rerun-if-changed=src");
}
