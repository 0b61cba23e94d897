//! The streaming reader of a whole RDB file: checks the magic and version,
//! then hands out AUX fields, database switches, resize hints, keys with
//! their expiry and function libraries one at a time, reading past module
//! AUX data, and verifies the CRC-64 at EOF.

use super::decode::{read_len, read_object, read_string, Limits};
use super::input::{Input, StreamInput};
use super::module::skip_module_aux;
use super::{opcode, RdbError, RDB_VERSION_MAX_READ};
use crate::store::Value;

/// One record of an RDB file.
pub enum Item {
    Aux(Vec<u8>, Vec<u8>),
    SelectDb(u32),
    ResizeDb { keys: u64, expires: u64 },
    Entry { key: Vec<u8>, value: Value, expire_at_ms: Option<u64> },
    Function(Vec<u8>),
}

pub struct Reader<R: std::io::Read> {
    inp: StreamInput<R>,
    version: u16,
    limits: Limits,
    done: bool,
    lru_idle: Option<u64>,
    lfu_freq: Option<u8>,
    skipped_empty: u64,
}

impl<R: std::io::Read> Reader<R> {
    /// A reader building values with the default encoding limits.
    pub fn new(r: R) -> Result<Self, RdbError> {
        Self::with_limits(r, Limits::default())
    }

    /// A reader building values with the configured limits.
    pub fn with_limits(r: R, limits: Limits) -> Result<Self, RdbError> {
        let mut inp = StreamInput::new(r);
        let magic: [u8; 9] = inp.array()?;
        if &magic[..5] != b"REDIS" {
            return Err(RdbError::corrupt(0, "not an RDB file (wrong signature)"));
        }
        let version = std::str::from_utf8(&magic[5..])
            .ok()
            .filter(|s| s.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| RdbError::corrupt(5, "not an RDB file (bad version digits)"))?;
        if version == 0 || version > RDB_VERSION_MAX_READ {
            return Err(RdbError::Version(version));
        }
        Ok(Reader { inp, version, limits, done: false, lru_idle: None, lfu_freq: None, skipped_empty: 0 })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.inp.offset()
    }

    /// The LRU idle time (seconds) recorded before the last entry returned.
    pub fn lru_idle(&self) -> Option<u64> {
        self.lru_idle
    }

    /// The LFU counter recorded before the last entry returned.
    pub fn lfu_freq(&self) -> Option<u8> {
        self.lfu_freq
    }

    /// Keys read past because they held an empty aggregate (Redis skips
    /// them too).
    pub fn skipped_empty_keys(&self) -> u64 {
        self.skipped_empty
    }

    /// The next record; `None` once EOF is read and the checksum verified
    /// (a stored checksum of zero means none was computed).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Item>, RdbError> {
        if self.done {
            return Ok(None);
        }
        let inp = &mut self.inp;
        let (mut expire, mut idle, mut freq) = (None, None, None);
        loop {
            let t = inp.u8()?;
            let item = match t {
                opcode::EXPIRETIME_MS => {
                    expire = Some(u64::from_le_bytes(inp.array()?));
                    continue;
                }
                opcode::EXPIRETIME => {
                    expire = Some(u32::from_le_bytes(inp.array()?) as u64 * 1000);
                    continue;
                }
                opcode::IDLE => {
                    idle = Some(read_len(inp)?);
                    continue;
                }
                opcode::FREQ => {
                    freq = Some(inp.u8()?);
                    continue;
                }
                opcode::SLOT_INFO => {
                    // Slot, its keys, its keys with expiry: a hint we do not need.
                    for _ in 0..3 {
                        read_len(inp)?;
                    }
                    continue;
                }
                opcode::MODULE_AUX => {
                    skip_module_aux(inp)?;
                    continue;
                }
                opcode::AUX => Item::Aux(read_string(inp)?, read_string(inp)?),
                opcode::RESIZEDB => Item::ResizeDb { keys: read_len(inp)?, expires: read_len(inp)? },
                opcode::SELECTDB => {
                    let db = read_len(inp)?;
                    Item::SelectDb(u32::try_from(db).map_err(|_| inp.corrupt(format!("database number {db} out of range")))?)
                }
                opcode::FUNCTION2 => Item::Function(read_string(inp)?),
                opcode::FUNCTION_PRE_GA => {
                    return Err(inp.corrupt("function library in the pre-release format of Redis 7.0 release candidates"))
                }
                opcode::EOF => {
                    if self.version >= 5 {
                        let computed = inp.crc();
                        let mut stored = [0u8; 8];
                        inp.read_unsummed(&mut stored)?;
                        let stored = u64::from_le_bytes(stored);
                        let skip = super::SKIP_CHECKSUM.load(std::sync::atomic::Ordering::Relaxed);
                        if stored != 0 && stored != computed && !skip {
                            return Err(RdbError::Checksum);
                        }
                    }
                    self.done = true;
                    return Ok(None);
                }
                t => {
                    let key = read_string(inp)?;
                    match read_object(inp, t, &key, self.limits)? {
                        Some(value) => {
                            self.lru_idle = idle;
                            self.lfu_freq = freq;
                            Item::Entry { key, value, expire_at_ms: expire }
                        }
                        None => {
                            self.skipped_empty += 1;
                            (expire, idle, freq) = (None, None, None);
                            continue;
                        }
                    }
                }
            };
            return Ok(Some(item));
        }
    }
}
