//! A ZIP archive written front to back (entries stored, sizes and CRCs in data descriptors),
//! so a download of many objects can start before the last one is read and never needs more
//! memory than one chunk. Zip64 records are added only where sizes or offsets need them.

use model::Timestamp;

/// Where the archive stands: the bytes written so far and the entries to list at the end.
#[derive(Default)]
pub struct ZipStream {
    offset: u64,
    entries: Vec<Entry>,
    current: Option<Entry>,
}

struct Entry {
    name: Vec<u8>,
    /// MS-DOS time and date of its modification.
    time: u16,
    date: u16,
    offset: u64,
    crc: u32,
    size: u64,
}

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
/// Bit 3: sizes follow the data; bit 11: names are UTF-8.
const FLAGS: u16 = 0x0808;
const MAX32: u64 = 0xFFFF_FFFF;

impl ZipStream {
    /// The local header of the next entry, modified at `modified`; its data follows.
    pub fn start_entry(&mut self, name: &str, modified: Timestamp) -> Vec<u8> {
        let name = name.as_bytes().to_vec();
        let (time, date) = dos_time(modified);
        let mut out = Vec::with_capacity(30 + name.len());
        put32(&mut out, LOCAL_HEADER);
        put16(&mut out, 45); // version needed: zip64-capable readers
        put16(&mut out, FLAGS);
        put16(&mut out, 0); // stored
        put16(&mut out, time);
        put16(&mut out, date);
        put32(&mut out, 0); // crc, sizes: in the data descriptor
        put32(&mut out, 0);
        put32(&mut out, 0);
        put16(&mut out, name.len() as u16);
        put16(&mut out, 0);
        out.extend_from_slice(&name);
        self.current = Some(Entry {
            name,
            time,
            date,
            offset: self.offset,
            crc: 0,
            size: 0,
        });
        self.offset += out.len() as u64;
        out
    }

    /// The data descriptor closing the current entry, once its data (`size` bytes with this
    /// CRC-32) has been written.
    pub fn finish_entry(&mut self, crc: u32, size: u64) -> Vec<u8> {
        let mut entry = self.current.take().expect("an entry was started");
        entry.crc = crc;
        entry.size = size;
        self.offset += size;
        let mut out = Vec::with_capacity(24);
        put32(&mut out, DATA_DESCRIPTOR);
        put32(&mut out, crc);
        if size >= MAX32 {
            put64(&mut out, size);
            put64(&mut out, size);
        } else {
            put32(&mut out, size as u32);
            put32(&mut out, size as u32);
        }
        self.offset += out.len() as u64;
        self.entries.push(entry);
        out
    }

    /// The central directory and end records.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::new();
        let start = self.offset;
        for entry in &self.entries {
            let big = entry.size >= MAX32 || entry.offset >= MAX32;
            let mut extra = Vec::new();
            if big {
                put16(&mut extra, 0x0001);
                put16(&mut extra, 24);
                put64(&mut extra, entry.size);
                put64(&mut extra, entry.size);
                put64(&mut extra, entry.offset);
            }
            put32(&mut out, CENTRAL_HEADER);
            put16(&mut out, 0x031e); // made by: Unix, spec 3.0
            put16(&mut out, 45);
            put16(&mut out, FLAGS);
            put16(&mut out, 0); // stored
            put16(&mut out, entry.time);
            put16(&mut out, entry.date);
            put32(&mut out, entry.crc);
            let small = |v: u64| if big { MAX32 as u32 } else { v as u32 };
            put32(&mut out, small(entry.size));
            put32(&mut out, small(entry.size));
            put16(&mut out, entry.name.len() as u16);
            put16(&mut out, extra.len() as u16);
            put16(&mut out, 0); // comment
            put16(&mut out, 0); // disk
            put16(&mut out, 0); // internal attributes
            put32(&mut out, 0o100644 << 16); // a regular file, rw-r--r--
            put32(&mut out, small(entry.offset));
            out.extend_from_slice(&entry.name);
            out.extend_from_slice(&extra);
        }
        let size = out.len() as u64;
        let count = self.entries.len() as u64;
        if count >= 0xFFFF || size >= MAX32 || start >= MAX32 {
            let end64 = start + size;
            put32(&mut out, ZIP64_END);
            put64(&mut out, 44);
            put16(&mut out, 0x031e);
            put16(&mut out, 45);
            put32(&mut out, 0);
            put32(&mut out, 0);
            put64(&mut out, count);
            put64(&mut out, count);
            put64(&mut out, size);
            put64(&mut out, start);
            put32(&mut out, ZIP64_LOCATOR);
            put32(&mut out, 0);
            put64(&mut out, end64);
            put32(&mut out, 1);
        }
        put32(&mut out, END);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, count.min(0xFFFF) as u16);
        put16(&mut out, count.min(0xFFFF) as u16);
        put32(&mut out, size.min(MAX32) as u32);
        put32(&mut out, start.min(MAX32) as u32);
        put16(&mut out, 0);
        out
    }
}

/// MS-DOS (time, date) in UTC, two-second steps, clamped to the years it can hold (1980–2107).
fn dos_time(at: Timestamp) -> (u16, u16) {
    let t = at.civil();
    if t.year < 1980 {
        return (0, (1 << 5) | 1);
    }
    let year = (t.year - 1980).min(127) as u16;
    let time = (u16::from(t.hour) << 11) | (u16::from(t.minute) << 5) | u16::from(t.second / 2);
    let date = (year << 9) | (u16::from(t.month) << 5) | u16::from(t.day);
    (time, date)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn archives_read_back_with_a_standard_reader() {
        let files: [(&str, &[u8]); 3] = [
            ("a.txt", b"first"),
            ("dir/été.bin", &[0, 1, 2, 255]),
            ("empty", b""),
        ];
        let mut zip = ZipStream::default();
        let mut bytes = Vec::new();
        // 2026-01-01 10:00:00 UTC.
        let modified = Timestamp::from_millis(1_767_261_600_123);
        for (name, data) in files {
            bytes.extend(zip.start_entry(name, modified));
            bytes.extend_from_slice(data);
            bytes.extend(zip.finish_entry(crc32fast::hash(data), data.len() as u64));
        }
        bytes.extend(zip.finish());

        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(archive.len(), 3);
        for (name, data) in files {
            let mut entry = archive.by_name(name).unwrap();
            let at = entry.last_modified().unwrap();
            assert_eq!(
                (at.year(), at.month(), at.day(), at.hour(), at.minute()),
                (2026, 1, 1, 10, 0),
                "{name}"
            );
            let mut read = Vec::new();
            entry.read_to_end(&mut read).unwrap();
            assert_eq!(read, data, "{name}");
        }
    }
}
