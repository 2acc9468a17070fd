//! Sealing large values (face videos, photos, PDFs) in fixed-size segments, so that a blob
//! is encrypted as it arrives and decrypted as it is read — a range of it without the rest —
//! never whole in memory. Each blob has its own data key, wrapped by the master key as in
//! [`Vault::seal`]; the segments are sealed with the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance",
//! 2015) over AES-256-GCM, from the `aead` crate: each segment's nonce holds its position and
//! whether it is the last, so segments cannot be reordered, dropped or cut off unnoticed.
//!
//! Layout (version 2; version 1 is [`Vault::seal`]'s single AES-GCM message):
//! `2 | wrap nonce (12) | wrapped data key (48) | stream nonce prefix (7) | segment size (u32 BE)`
//! then the segments, each `segment size` plaintext bytes (the last one 0..=segment size)
//! plus a 16-byte tag. The blob's context (its id, order and kind) is the associated data of
//! the key wrap and of every segment.

use crate::StoreError;
use crate::vault::{NONCE, Vault, WRAPPED};
use aes_gcm::Aes256Gcm;
use aes_gcm::aead::KeyInit;
use aes_gcm::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use rand::RngCore;
use std::ops::Range;

/// The first byte of a segmented blob.
pub const VERSION: u8 = 2;
/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
const TAG: usize = 16;
const PREFIX: usize = 7;
/// Bytes before the first segment.
pub const HEADER: usize = 1 + NONCE + WRAPPED + PREFIX + 4;

fn corrupt(context: &str) -> StoreError {
    StoreError::Corrupt(format!("sealed blob {context} does not open"))
}

/// Seals a value as it arrives: [`Sealer::push`] plaintext, write out what it returns,
/// then [`Sealer::finish`].
pub struct Sealer {
    stream: StreamBE32<Aes256Gcm>,
    context: String,
    position: u32,
    pending: Vec<u8>,
    /// Plaintext bytes taken so far.
    pub size: u64,
}

impl Sealer {
    /// A sealer for a value bound to `context`, and the header to write before its segments.
    pub fn new(vault: &Vault, context: &str) -> (Vec<u8>, Sealer) {
        let (dek, wrap_nonce, wrapped) = vault.new_data_key(context);
        let mut prefix = [0u8; PREFIX];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let mut header = Vec::with_capacity(HEADER);
        header.push(VERSION);
        header.extend_from_slice(&wrap_nonce);
        header.extend_from_slice(&wrapped);
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&(SEGMENT as u32).to_be_bytes());
        let stream = StreamBE32::from_aead(Aes256Gcm::new(&dek.into()), prefix.as_slice().into());
        let sealer =
            Sealer { stream, context: context.to_owned(), position: 0, pending: Vec::with_capacity(SEGMENT), size: 0 };
        (header, sealer)
    }

    /// Takes more plaintext; returns the segments completed by it (a segment is sealed once
    /// more data follows it, as only the last one is marked last).
    pub fn push(&mut self, mut data: &[u8]) -> Vec<u8> {
        self.size += data.len() as u64;
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == SEGMENT {
                let mut segment = std::mem::replace(&mut self.pending, Vec::with_capacity(SEGMENT));
                self.seal(&mut segment, false);
                out.extend_from_slice(&segment);
            }
            let take = (SEGMENT - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        out
    }

    /// Seals what is left as the last segment and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        let mut last = std::mem::take(&mut self.pending);
        self.seal(&mut last, true);
        last
    }

    fn seal(&mut self, segment: &mut Vec<u8>, last: bool) {
        self.stream
            .encrypt_in_place(self.position, last, self.context.as_bytes(), segment)
            .expect("a segment of 64 KiB is within AES-GCM's limits");
        self.position = self.position.checked_add(1).expect("fewer than 2^32 segments");
    }
}

/// Opens the segments of a sealed blob whose header has been read.
pub struct Opener {
    stream: StreamBE32<Aes256Gcm>,
    context: String,
    segment: usize,
    /// Plaintext size of the whole blob.
    pub size: u64,
    segments: u64,
    sealed_len: u64,
}

impl Opener {
    /// Reads the header of a blob of `sealed_len` bytes bound to `context`.
    pub fn new(vault: &Vault, header: &[u8], sealed_len: u64, context: &str) -> Result<Opener, StoreError> {
        if header.len() < HEADER || header[0] != VERSION || sealed_len < (HEADER + TAG) as u64 {
            return Err(corrupt(context));
        }
        let (wrap_nonce, rest) = header[1..].split_at(NONCE);
        let (wrapped, rest) = rest.split_at(WRAPPED);
        let (prefix, rest) = rest.split_at(PREFIX);
        let segment = u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        if segment == 0 || segment > 16 * 1024 * 1024 {
            return Err(corrupt(context));
        }
        let dek = vault.open_data_key(wrap_nonce, wrapped, context).ok_or_else(|| corrupt(context))?;
        let body = sealed_len - HEADER as u64;
        let full = (segment + TAG) as u64;
        let segments = body.div_ceil(full).max(1);
        let last = body - (segments - 1) * full;
        if last < TAG as u64 {
            return Err(corrupt(context));
        }
        let size = (segments - 1) * segment as u64 + (last - TAG as u64);
        let stream = StreamBE32::from_aead(Aes256Gcm::new(&dek.into()), prefix.into());
        Ok(Opener { stream, context: context.to_owned(), segment, size, segments, sealed_len })
    }

    /// Where the sealed segments holding plaintext `range` are: the sealed byte range to read
    /// and the index of its first segment.
    pub fn sealed_range(&self, range: &Range<u64>) -> (Range<u64>, u64) {
        let seg = self.segment as u64;
        let first = range.start / seg;
        let last = (range.end.max(range.start + 1) - 1) / seg;
        let last = last.min(self.segments - 1);
        let full = seg + TAG as u64;
        let start = HEADER as u64 + first * full;
        let end = (HEADER as u64 + (last + 1) * full).min(self.sealed_len);
        (start..end, first)
    }

    /// Opens consecutive sealed segments starting with segment `first` (as read from
    /// [`Opener::sealed_range`]); returns their plaintext.
    pub fn open(&self, first: u64, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let full = self.segment + TAG;
        let mut out = Vec::with_capacity(sealed.len());
        for (i, chunk) in sealed.chunks(full).enumerate() {
            let index = first + i as u64;
            let position = u32::try_from(index).map_err(|_| corrupt(&self.context))?;
            let mut buffer = chunk.to_vec();
            self.stream
                .decrypt_in_place(position, index == self.segments - 1, self.context.as_bytes(), &mut buffer)
                .map_err(|_| corrupt(&self.context))?;
            out.extend_from_slice(&buffer);
        }
        Ok(out)
    }

    /// Opens the segments holding plaintext `range` (read with [`Opener::sealed_range`]) and
    /// returns exactly the bytes of `range`.
    pub fn open_range(&self, range: &Range<u64>, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (_, first) = self.sealed_range(range);
        let plain = self.open(first, sealed)?;
        let offset = (range.start - first * self.segment as u64) as usize;
        let len = (range.end - range.start) as usize;
        plain.get(offset..offset + len).map(<[u8]>::to_vec).ok_or_else(|| corrupt(&self.context))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterKey;

    fn seal_in_pieces(vault: &Vault, data: &[u8], piece: usize, context: &str) -> Vec<u8> {
        let (mut out, mut sealer) = Sealer::new(vault, context);
        for p in data.chunks(piece.max(1)) {
            out.extend(sealer.push(p));
        }
        out.extend(sealer.finish());
        out
    }

    fn open_all(vault: &Vault, sealed: &[u8], context: &str) -> Result<Vec<u8>, StoreError> {
        let opener = Opener::new(vault, &sealed[..HEADER.min(sealed.len())], sealed.len() as u64, context)?;
        let (range, first) = opener.sealed_range(&(0..opener.size));
        if opener.size == 0 {
            return opener.open(0, &sealed[HEADER..]);
        }
        opener.open(first, &sealed[range.start as usize..range.end as usize])
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn values_of_every_size_come_back_whatever_the_pieces() {
        let vault = Vault::new(&MasterKey::generate());
        for len in [0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 3 * SEGMENT, 3 * SEGMENT + 17] {
            for piece in [1000, SEGMENT, 100_000] {
                let d = data(len);
                let sealed = seal_in_pieces(&vault, &d, piece, "blob:a");
                let segments = len.div_ceil(SEGMENT).max(1);
                assert_eq!(sealed.len(), HEADER + len + segments * TAG, "{len} bytes in pieces of {piece}");
                assert_eq!(open_all(&vault, &sealed, "blob:a").unwrap(), d, "{len} bytes in pieces of {piece}");
            }
        }
    }

    #[test]
    fn any_range_opens_from_its_own_segments() {
        let vault = Vault::new(&MasterKey::generate());
        let d = data(5 * SEGMENT + 123);
        let sealed = seal_in_pieces(&vault, &d, 7777, "blob:r");
        let opener = Opener::new(&vault, &sealed[..HEADER], sealed.len() as u64, "blob:r").unwrap();
        assert_eq!(opener.size, d.len() as u64);
        let n = d.len() as u64;
        for r in [0..1, 0..100, 65_530..65_545, SEGMENT as u64..2 * SEGMENT as u64, n - 10..n, 0..n, 3..n - 3] {
            let (sealed_range, _) = opener.sealed_range(&r);
            assert!(sealed_range.end - sealed_range.start <= (r.end - r.start) + 2 * (SEGMENT + TAG) as u64);
            let piece = &sealed[sealed_range.start as usize..sealed_range.end as usize];
            assert_eq!(opener.open_range(&r, piece).unwrap(), &d[r.start as usize..r.end as usize], "{r:?}");
        }
    }

    #[test]
    fn tampering_reordering_truncation_and_another_context_are_refused() {
        let vault = Vault::new(&MasterKey::generate());
        let d = data(3 * SEGMENT + 5);
        let sealed = seal_in_pieces(&vault, &d, SEGMENT, "blob:t");
        assert!(open_all(&vault, &sealed, "blob:other").is_err(), "bound to its context");
        assert!(open_all(&Vault::new(&MasterKey::generate()), &sealed, "blob:t").is_err(), "another master key");
        let mut flipped = sealed.clone();
        flipped[HEADER + SEGMENT + 40] ^= 1;
        assert!(open_all(&vault, &flipped, "blob:t").is_err(), "a flipped bit");
        // Cut after a whole segment: the new last segment was not sealed as the last.
        let cut = &sealed[..HEADER + 2 * (SEGMENT + TAG)];
        assert!(open_all(&vault, cut, "blob:t").is_err(), "truncated at a segment boundary");
        // Two segments swapped.
        let mut swapped = sealed[..HEADER].to_vec();
        swapped.extend_from_slice(&sealed[HEADER + SEGMENT + TAG..HEADER + 2 * (SEGMENT + TAG)]);
        swapped.extend_from_slice(&sealed[HEADER..HEADER + SEGMENT + TAG]);
        swapped.extend_from_slice(&sealed[HEADER + 2 * (SEGMENT + TAG)..]);
        assert!(open_all(&vault, &swapped, "blob:t").is_err(), "segments reordered");
        assert!(Opener::new(&vault, &sealed[..10], sealed.len() as u64, "blob:t").is_err(), "short header");
        let v1 = vault.seal(b"old", "blob:t");
        assert!(Opener::new(&vault, &v1, v1.len() as u64, "blob:t").is_err(), "a version 1 value is not segmented");
    }
}
