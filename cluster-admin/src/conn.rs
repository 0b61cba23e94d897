//! Reaching the nodes: a node's gRPC address from its client address (RESP
//! `CLUSTER NODES`), admin-service clients, node ids from the cluster status,
//! and readable messages for gRPC errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use damselfly_proto::admin::admin_client::AdminClient;
use damselfly_proto::admin::{NodeInfoReply, NodeInfoRequest, StatusReply, StatusRequest};
use damselfly_proto::bus_auth::Attach;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::Res;

/// An admin client whose calls carry the cluster secret, if one was given.
pub type Admin = AdminClient<InterceptedService<Channel, Attach>>;

/// The cluster secret's header, set once from the command line.
static AUTH: std::sync::OnceLock<Attach> = std::sync::OnceLock::new();

/// Sets the cluster secret every admin call carries (`--secret`,
/// `--secret-file` or `DAMSELFLY_CLUSTER_SECRET`).
pub fn set_secret(secret: Option<&str>) -> Res<()> {
    let _ = AUTH.set(Attach::new(secret)?);
    Ok(())
}

/// The client credentials the RESP side sends first (`--user`, `--password`
/// or `DAMSELFLY_PASSWORD`), set once from the command line.
static RESP_AUTH: std::sync::OnceLock<(Option<String>, String)> = std::sync::OnceLock::new();

/// Sets the user and password sent with AUTH on every RESP connection to a
/// node (nodes with `requirepass` or ACL users).
pub fn set_resp_auth(user: Option<String>, password: Option<String>) {
    if let Some(p) = password {
        let _ = RESP_AUTH.set((user, p));
    }
}

/// A RESP connection to `addr`, authenticated when credentials were given.
fn open(addr: &str, timeout: Duration) -> Res<TcpStream> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let Some((user, password)) = RESP_AUTH.get() else { return Ok(s) };
    let mut args: Vec<&str> = vec!["AUTH"];
    args.extend(user.as_deref());
    args.push(password);
    s.write_all(&encode(&args)).map_err(|e| format!("{addr}: {e}"))?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") && line.len() < 1024 {
        match s.read(&mut byte) {
            Ok(1) => line.push(byte[0]),
            Ok(_) => return Err(format!("{addr}: connection closed during AUTH")),
            Err(e) => return Err(format!("{addr}: {e}")),
        }
    }
    let reply = String::from_utf8_lossy(&line).trim_end().to_string();
    if reply != "+OK" {
        return Err(format!("{addr}: AUTH answered {reply}"));
    }
    Ok(s)
}

/// A command in RESP.
fn encode(args: &[&str]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    req.into_bytes()
}

/// Mutual TLS towards the nodes (`--tls`), set once from the command line.
static TLS: std::sync::OnceLock<ClientTlsConfig> = std::sync::OnceLock::new();

/// Reads the client certificate, its key and the CA (PEM files).
pub fn set_tls(cert: &str, key: &str, ca: &str) -> Res<()> {
    let read = |flag: &str, path: &str| std::fs::read(path).map_err(|e| format!("{flag} {path}: {e}"));
    let identity = Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?);
    let ca = Certificate::from_pem(read("--tls-ca", ca)?);
    let _ = TLS.set(ClientTlsConfig::new().ca_certificate(ca).identity(identity));
    Ok(())
}

fn admin(ch: Channel) -> Admin {
    AdminClient::with_interceptor(ch, AUTH.get().cloned().unwrap_or_default())
}

pub fn status_err(s: tonic::Status) -> String {
    match s.code() {
        tonic::Code::Unavailable if s.message().is_empty() => "node unreachable: check --seed and that the node runs with --cluster".into(),
        // A TLS bus drops a plain client, or one whose certificate its CA
        // did not sign, before any gRPC status.
        _ if ["transport error", "h2 protocol error", "operation was canceled"].iter().any(|m| s.message().starts_with(m)) => format!(
            "{} (node unreachable, or it refused the connection: nodes started with --tls-cluster yes need --tls with --tls-cert/--tls-key signed by their CA, and --tls-ca)",
            s.message()
        ),
        tonic::Code::Unauthenticated => {
            format!("{} (the node requires the cluster secret: pass --secret, --secret-file or set DAMSELFLY_CLUSTER_SECRET)", s.message())
        }
        tonic::Code::Unimplemented => {
            let why = if s.message().is_empty() { String::new() } else { format!(" ({})", s.message()) };
            format!("the node does not support this operation{why}: upgrade the cluster's nodes")
        }
        _ => s.message().to_string(),
    }
}

/// An admin client whose calls time out after 30 s (connecting after 5 s).
pub fn connect(grpc_addr: &str) -> Res<Admin> {
    Ok(admin(endpoint(grpc_addr)?.timeout(Duration::from_secs(30)).connect_lazy()))
}

/// An admin client for slot moves: a move streams progress for as long as
/// it takes, so only connecting is bounded.
pub fn connect_for_moves(grpc_addr: &str) -> Res<Admin> {
    Ok(admin(endpoint(grpc_addr)?.connect_lazy()))
}

fn endpoint(grpc_addr: &str) -> Res<Endpoint> {
    let bad = |e: tonic::transport::Error| format!("bad address {grpc_addr}: {e}");
    let ep = match TLS.get() {
        Some(tls) => Endpoint::from_shared(format!("https://{grpc_addr}")).map_err(bad)?.tls_config(tls.clone()).map_err(bad)?,
        None => Endpoint::from_shared(format!("http://{grpc_addr}")).map_err(bad)?,
    };
    Ok(ep.connect_timeout(Duration::from_secs(5)))
}

/// The cluster status, asked of the seed.
pub async fn status(admin: &mut Admin) -> Res<StatusReply> {
    Ok(admin.status(StatusRequest {}).await.map_err(status_err)?.into_inner())
}

/// A member's id, given its id or its client address.
pub fn resolve_in(st: &StatusReply, node: &str) -> Res<String> {
    st.members
        .iter()
        .find(|m| m.node_id == node || m.client_addr == node)
        .map(|m| m.node_id.clone())
        .ok_or_else(|| format!("no member '{node}': give a node id or client address shown by `cluster-admin status`"))
}

/// Sends one RESP command over a plain socket (after AUTH, when credentials
/// were given) and returns the reply text.
pub fn resp_command(addr: &str, args: &[&str]) -> Res<String> {
    let mut s = open(addr, Duration::from_secs(5))?;
    s.write_all(&encode(args)).map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).map_err(|e| format!("{addr}: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(text) = complete_reply(&buf) {
            return Ok(text);
        }
    }
    complete_reply(&buf).ok_or_else(|| format!("{addr}: incomplete reply"))
}

/// Keys held in each of `slots` by the node at client address `addr`
/// (CLUSTER COUNTKEYSINSLOT, pipelined on one connection).
pub fn keys_in_slots(addr: &str, slots: &[u32]) -> Res<Vec<u64>> {
    let mut s = open(addr, Duration::from_secs(10))?;
    let mut req = String::new();
    for slot in slots {
        let n = slot.to_string();
        req.push_str(&format!("*3\r\n$7\r\nCLUSTER\r\n$15\r\nCOUNTKEYSINSLOT\r\n${}\r\n{n}\r\n", n.len()));
    }
    s.write_all(req.as_bytes()).map_err(|e| format!("{addr}: {e}"))?;
    let mut text = String::new();
    let mut counts = Vec::with_capacity(slots.len());
    let mut chunk = [0u8; 16384];
    while counts.len() < slots.len() {
        let n = s.read(&mut chunk).map_err(|e| format!("{addr}: {e}"))?;
        if n == 0 {
            return Err(format!("{addr}: connection closed"));
        }
        text.push_str(&String::from_utf8_lossy(&chunk[..n]));
        while let Some(eol) = text.find("\r\n") {
            let line: String = text.drain(..eol + 2).collect();
            let n = line.trim_end().strip_prefix(':').and_then(|v| v.parse().ok()).ok_or_else(|| format!("{addr}: {}", line.trim_end()))?;
            counts.push(n);
        }
    }
    Ok(counts)
}

/// The text of a complete simple/error/bulk/verbatim reply.
fn complete_reply(b: &[u8]) -> Option<String> {
    let eol = b.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&b[..eol]).ok()?;
    match head.as_bytes().first()? {
        b'$' | b'=' => {
            let n: usize = head[1..].parse().ok()?;
            let body = b.get(eol + 2..eol + 2 + n)?;
            let text = String::from_utf8_lossy(body).into_owned();
            Some(text.strip_prefix("txt:").map(str::to_string).unwrap_or(text))
        }
        _ => Some(head.to_string()),
    }
}

/// The gRPC address of the node with client address `addr`: its host and the
/// bus port of `myself` in its CLUSTER NODES.
pub fn grpc_addr_of(addr: &str) -> Res<String> {
    let (host, _) = addr.rsplit_once(':').ok_or_else(|| format!("'{addr}' is not HOST:PORT"))?;
    let nodes = resp_command(addr, &["CLUSTER", "NODES"])?;
    if nodes.starts_with('-') {
        return Err(format!("{addr} answered {nodes}: start it with --cluster"));
    }
    let line = nodes.lines().find(|l| l.contains("myself")).ok_or_else(|| format!("{addr}: no 'myself' in CLUSTER NODES"))?;
    let port = line
        .split_whitespace()
        .nth(1)
        .and_then(|a| a.split_once('@'))
        .and_then(|(_, p)| p.split(',').next())
        .ok_or_else(|| format!("{addr}: unexpected CLUSTER NODES line '{line}'"))?;
    Ok(format!("{host}:{port}"))
}

/// Each member's own report (keys, memory, load, Raft state), asked of all
/// of them at once; `None` for a member that did not answer within 2 s.
pub async fn health(st: &StatusReply) -> Vec<Option<NodeInfoReply>> {
    let mut set = tokio::task::JoinSet::new();
    for (i, m) in st.members.iter().enumerate() {
        let addr = m.grpc_addr.clone();
        set.spawn(async move {
            let ask = async {
                let mut c = connect(&addr).ok()?;
                let mut req = tonic::Request::new(NodeInfoRequest {});
                req.set_timeout(Duration::from_secs(2));
                Some(c.node_info(req).await.ok()?.into_inner())
            };
            (i, tokio::time::timeout(Duration::from_secs(2), ask).await.ok().flatten())
        });
    }
    let mut out = vec![None; st.members.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, info)) = r {
            out[i] = info;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_by_id_or_address() {
        use damselfly_proto::admin::MemberStatus;
        let m = |id: &str, addr: &str| MemberStatus { node_id: id.into(), client_addr: addr.into(), ..Default::default() };
        let st = StatusReply { members: vec![m("aa", "10.0.0.1:7001"), m("bb", "10.0.0.2:7001")], ..Default::default() };
        assert_eq!(resolve_in(&st, "bb").unwrap(), "bb");
        assert_eq!(resolve_in(&st, "10.0.0.1:7001").unwrap(), "aa");
        assert!(resolve_in(&st, "10.0.0.3:7001").unwrap_err().contains("no member '10.0.0.3:7001'"));
    }

    #[test]
    fn unimplemented_calls_say_to_upgrade() {
        let e = status_err(tonic::Status::unimplemented(""));
        assert!(e.contains("upgrade"), "{e}");
        assert_eq!(status_err(tonic::Status::failed_precondition("slot 5 is not owned by x")), "slot 5 is not owned by x");
    }

    #[test]
    fn replies() {
        assert_eq!(complete_reply(b"$3\r\nabc\r\n").as_deref(), Some("abc"));
        assert_eq!(complete_reply(b"$3\r\nab"), None);
        assert_eq!(complete_reply(b"-ERR x\r\n").as_deref(), Some("-ERR x"));
    }
}
