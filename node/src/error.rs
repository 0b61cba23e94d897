//! Command errors. Every failure a client can cause is a `CmdError`; the
//! connection turns it into a RESP error reply in exactly one place
//! (`CmdError::write_to`).

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CmdError {
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR unknown command '{name}', with args beginning with: {preview}")]
    UnknownCommand { name: String, preview: String },
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { cmd: String, sub: String },
    #[error("ERR syntax error")]
    Syntax,
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    #[error("ERR value is NaN or Infinity")]
    NanOrInfinityValue,
    #[error("ERR value is out of range")]
    OutOfRange,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR source and destination objects are the same")]
    SameObject,
    #[error("BUSYKEY Target key name already exists.")]
    BusyKey,
    #[error("ERR DUMP payload version or checksum are wrong")]
    BadDumpPayload,
    #[error("ERR Bad data format")]
    BadDataFormat,
    #[error("ERR Invalid TTL value, must be >= 0")]
    InvalidTtl,
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    #[error("LOADING Redis is loading the dataset in memory")]
    Loading,
    #[error("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.")]
    Misconf,
    #[error("NOREPLICAS Not enough good replicas to write.")]
    NoReplicas,
    #[error("READONLY You can't write against a read only replica.")]
    ReadOnlyReplica,
    #[error("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.")]
    MasterDown,
    /// Any other error, already worded as Redis words it (including its prefix).
    #[error("{0}")]
    Other(String),
}

impl CmdError {
    /// An `-ERR <text>` error.
    pub fn err(text: impl Into<String>) -> Self {
        CmdError::Other(format!("ERR {}", text.into()))
    }

    /// The unknown-command error, with Redis's preview of the first arguments.
    pub fn unknown_command(name: &[u8], args: &[bytes::Bytes]) -> Self {
        let mut preview = String::new();
        for a in args.iter().take(20) {
            if preview.len() >= 128 {
                break;
            }
            preview.push('\'');
            preview.push_str(&String::from_utf8_lossy(&a[..a.len().min(128)]));
            preview.push_str("' ");
        }
        CmdError::UnknownCommand { name: lossy_trunc(name), preview }
    }

    /// The unknown-subcommand error of a container (`CLIENT`), as Redis
    /// words it.
    pub fn unknown_subcommand(container: &str, sub: &[u8]) -> Self {
        CmdError::UnknownSubcommand { cmd: container.to_ascii_uppercase(), sub: lossy_trunc(sub) }
    }

    /// Redis's error for a subcommand's arguments that its declared arity
    /// lets through but it does not take (PUBSUB CHANNELS with two
    /// patterns).
    pub fn subcommand_syntax(container: &str, sub: &[u8]) -> Self {
        CmdError::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
            lossy_trunc(sub),
            container.to_ascii_uppercase()
        ))
    }

    pub fn wrong_arity(name: &str) -> Self {
        CmdError::WrongArity(name.to_ascii_lowercase())
    }
}

fn lossy_trunc(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(128)]).into_owned()
}

pub type CmdResult<T = ()> = Result<T, CmdError>;
