//! The cluster bus's shared secret. When the nodes are given one, every RPC
//! of every service (Raft, admin, migration) must carry it in the
//! `x-damselfly-secret` metadata entry: `Check` is the server-side
//! interceptor that refuses the others with `Unauthenticated`, `Attach` the
//! client-side one that adds it. Without a secret both let everything
//! through (the bus is then open: firewall it).

use std::sync::Arc;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The metadata entry that carries the secret.
pub const HEADER: &str = "x-damselfly-secret";

/// Checks a secret's form: not empty, printable ASCII without spaces at the
/// ends (it travels as a gRPC header value).
pub fn validate(secret: &str) -> Result<(), String> {
    if secret.is_empty() {
        return Err("the cluster secret is empty".into());
    }
    if !secret.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err("the cluster secret must be printable ASCII without spaces".into());
    }
    Ok(())
}

/// A secret as read from a file: the trailing newline (and surrounding
/// whitespace) dropped, then checked as `validate` does.
pub fn from_file(path: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the cluster secret file {path}: {e}"))?;
    let secret = text.trim().to_string();
    validate(&secret).map_err(|e| format!("{path}: {e}"))?;
    Ok(secret)
}

/// Client side: adds the secret, if any, to every request.
#[derive(Clone, Default)]
pub struct Attach(Option<MetadataValue<Ascii>>);

impl Attach {
    pub fn new(secret: Option<&str>) -> Result<Self, String> {
        match secret {
            None => Ok(Attach(None)),
            Some(s) => {
                validate(s)?;
                Ok(Attach(Some(s.parse().map_err(|_| "the cluster secret is not a valid header value".to_string())?)))
            }
        }
    }
}

impl Interceptor for Attach {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(v) = &self.0 {
            request.metadata_mut().insert(HEADER, v.clone());
        }
        Ok(request)
    }
}

/// Server side: with a secret, refuses requests that do not carry it.
#[derive(Clone, Default)]
pub struct Check(Option<Arc<[u8]>>);

impl Check {
    pub fn new(secret: Option<&str>) -> Self {
        Check(secret.map(|s| Arc::from(s.as_bytes())))
    }
}

/// Compares in time that depends only on `expected`'s length, not on where
/// the first difference is.
fn same(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = (expected.len() ^ given.len()) as u64;
    for (i, e) in expected.iter().enumerate() {
        diff |= u64::from(e ^ given.get(i).copied().unwrap_or(!e));
    }
    std::hint::black_box(diff) == 0
}

impl Interceptor for Check {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else { return Ok(request) };
        match request.metadata().get(HEADER) {
            None => Err(Status::unauthenticated(
                "cluster bus authentication failed: this node requires the cluster secret and the request carried none (cluster-admin: --secret, --secret-file or DAMSELFLY_CLUSTER_SECRET; nodes: the same --cluster-secret or --cluster-secret-file on every node)",
            )),
            Some(v) if same(expected, v.as_bytes()) => Ok(request),
            Some(_) => Err(Status::unauthenticated(
                "cluster bus authentication failed: wrong cluster secret (every node and cluster-admin must use the same one)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(secret: Option<&str>) -> Request<()> {
        let mut a = Attach::new(secret).unwrap();
        a.call(Request::new(())).unwrap()
    }

    #[test]
    fn check_accepts_only_the_secret() {
        let mut open = Check::new(None);
        assert!(open.call(with(None)).is_ok());
        let mut c = Check::new(Some("s3cret"));
        assert!(c.call(with(Some("s3cret"))).is_ok());
        let e = c.call(with(None)).unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated);
        assert!(e.message().contains("carried none"), "{e:?}");
        for wrong in ["s3creT", "s3cre", "s3cret!", "x"] {
            let e = c.call(with(Some(wrong))).unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
            assert!(e.message().contains("wrong cluster secret"), "{e:?}");
        }
    }

    #[test]
    fn secrets_are_checked_and_files_trimmed() {
        assert!(validate("").is_err());
        assert!(validate("a b").is_err());
        assert!(Attach::new(Some("")).is_err());
        let p = std::env::temp_dir().join(format!("damselfly-secret-{}", std::process::id()));
        std::fs::write(&p, "abc\n").unwrap();
        assert_eq!(from_file(p.to_str().unwrap()).unwrap(), "abc");
        std::fs::write(&p, "\n").unwrap();
        assert!(from_file(p.to_str().unwrap()).unwrap_err().contains("empty"));
        let _ = std::fs::remove_file(&p);
    }
}
