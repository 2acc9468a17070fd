//! What an uploaded file really is, judged by its first bytes (never by its name or the
//! browser's claim), and how large each kind of upload may be.

/// Media types yiqian accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// JPEG image.
    Jpeg,
    /// PNG image.
    Png,
    /// WebP image.
    Webp,
    /// MP4 or QuickTime video (iPhones record these).
    Mp4,
    /// WebM video (Chrome and Android record these).
    Webm,
}

impl MediaType {
    /// The MIME type.
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
            MediaType::Mp4 => "video/mp4",
            MediaType::Webm => "video/webm",
        }
    }

    /// Whether this is a still image.
    pub fn is_image(self) -> bool {
        matches!(self, MediaType::Jpeg | MediaType::Png | MediaType::Webp)
    }

    /// Whether this is a video.
    pub fn is_video(self) -> bool {
        matches!(self, MediaType::Mp4 | MediaType::Webm)
    }
}

/// Recognises the file from its magic bytes.
pub fn sniff(bytes: &[u8]) -> Option<MediaType> {
    match bytes {
        [0xFF, 0xD8, 0xFF, ..] => Some(MediaType::Jpeg),
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(MediaType::Png),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(MediaType::Webp),
        [0x1A, 0x45, 0xDF, 0xA3, ..] => Some(MediaType::Webm),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some(MediaType::Mp4),
        _ => None,
    }
}

/// Largest ID card photo accepted (after the browser's downscaling it is far smaller).
pub const MAX_PHOTO_BYTES: usize = 8 * 1024 * 1024;
/// Largest face video accepted.
pub const MAX_VIDEO_BYTES: usize = 30 * 1024 * 1024;
/// Largest signature image accepted.
pub const MAX_SIGNATURE_BYTES: usize = 2 * 1024 * 1024;
/// Smallest plausible upload: anything shorter is not a real photo or video.
pub const MIN_UPLOAD_BYTES: usize = 64;

/// Why an upload was refused; the text is shown to the applicant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// Nothing, or almost nothing, was uploaded.
    #[error("文件为空或不完整,请重新上传")]
    Empty,
    /// Too large.
    #[error("文件过大(不能超过{limit_mb}MB),请重新拍摄")]
    TooLarge {
        /// The limit in megabytes.
        limit_mb: usize,
    },
    /// Not an image.
    #[error("请上传 JPG 或 PNG 格式的照片")]
    NotAnImage,
    /// Not a video.
    #[error("请上传 MP4 或 WebM 格式的视频")]
    NotAVideo,
}

fn check_size(bytes: &[u8], max: usize) -> Result<(), UploadError> {
    if bytes.len() < MIN_UPLOAD_BYTES {
        Err(UploadError::Empty)
    } else if bytes.len() > max {
        Err(UploadError::TooLarge { limit_mb: max / (1024 * 1024) })
    } else {
        Ok(())
    }
}

/// Checks an ID card photo.
pub fn check_photo(bytes: &[u8]) -> Result<MediaType, UploadError> {
    check_size(bytes, MAX_PHOTO_BYTES)?;
    sniff(bytes).filter(|m| m.is_image()).ok_or(UploadError::NotAnImage)
}

/// Checks a signature image (PNG from the signature pad).
pub fn check_signature(bytes: &[u8]) -> Result<MediaType, UploadError> {
    check_size(bytes, MAX_SIGNATURE_BYTES)?;
    sniff(bytes).filter(|m| *m == MediaType::Png).ok_or(UploadError::NotAnImage)
}

/// Checks a face video.
pub fn check_video(bytes: &[u8]) -> Result<MediaType, UploadError> {
    let mut incoming = IncomingVideo::default();
    incoming.take(bytes)?;
    incoming.finish()
}

/// A face video checked as its bytes arrive, so that it need never be whole in memory: what
/// it is (from its first bytes) and how large (counted), refused as soon as either is wrong.
/// The same rules as [`check_video`], which checks a whole one this way.
#[derive(Debug, Default)]
pub struct IncomingVideo {
    head: Vec<u8>,
    size: usize,
}

impl IncomingVideo {
    /// Takes the next piece of the video.
    pub fn take(&mut self, piece: &[u8]) -> Result<(), UploadError> {
        self.size = self.size.saturating_add(piece.len());
        if self.size > MAX_VIDEO_BYTES {
            return Err(UploadError::TooLarge { limit_mb: MAX_VIDEO_BYTES / (1024 * 1024) });
        }
        if self.head.len() < MIN_UPLOAD_BYTES {
            let want = (MIN_UPLOAD_BYTES - self.head.len()).min(piece.len());
            self.head.extend_from_slice(&piece[..want]);
            if self.head.len() == MIN_UPLOAD_BYTES && !sniff(&self.head).is_some_and(MediaType::is_video) {
                return Err(UploadError::NotAVideo);
            }
        }
        Ok(())
    }

    /// Bytes taken so far.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The video's type once all of it has arrived, or why it is refused.
    pub fn finish(&self) -> Result<MediaType, UploadError> {
        if self.size < MIN_UPLOAD_BYTES {
            return Err(UploadError::Empty);
        }
        sniff(&self.head).filter(|m| m.is_video()).ok_or(UploadError::NotAVideo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn padded(head: &[u8]) -> Vec<u8> {
        let mut v = head.to_vec();
        v.resize(100, 0);
        v
    }

    #[test]
    fn recognises_by_bytes() {
        assert_eq!(check_photo(&padded(&[0xFF, 0xD8, 0xFF, 0xE0])), Ok(MediaType::Jpeg));
        assert_eq!(check_signature(&padded(b"\x89PNG\r\n\x1a\n")), Ok(MediaType::Png));
        assert_eq!(check_video(&padded(b"\0\0\0\x18ftypmp42")), Ok(MediaType::Mp4));
        assert_eq!(check_video(&padded(&[0x1A, 0x45, 0xDF, 0xA3])), Ok(MediaType::Webm));
        assert_eq!(check_photo(&padded(b"%PDF-1.7")), Err(UploadError::NotAnImage));
        assert_eq!(check_photo(&padded(&[0x1A, 0x45, 0xDF, 0xA3])), Err(UploadError::NotAnImage));
        assert_eq!(check_video(&padded(&[0xFF, 0xD8, 0xFF])), Err(UploadError::NotAVideo));
        assert_eq!(check_photo(&[0xFF, 0xD8, 0xFF]), Err(UploadError::Empty));
        let mut big = padded(&[0xFF, 0xD8, 0xFF]);
        big.resize(MAX_PHOTO_BYTES + 1, 0);
        assert_eq!(check_photo(&big), Err(UploadError::TooLarge { limit_mb: 8 }));
    }

    proptest! {
        #[test]
        fn sniff_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = sniff(&bytes);
        }
    }

    proptest! {
        #[test]
        fn a_video_checked_in_pieces_is_judged_as_a_whole_one(
            head in prop::sample::select(vec![b"\0\0\0\x18ftypmp42".to_vec(), vec![0x1A, 0x45, 0xDF, 0xA3], vec![0xFF, 0xD8, 0xFF]]),
            len in 0usize..300,
            cuts in prop::collection::vec(0usize..300, 0..6),
        ) {
            let mut bytes = head.clone();
            bytes.resize(len, 0x33);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut incoming = IncomingVideo::default();
            let mut verdict = Ok(());
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                if verdict.is_ok() {
                    verdict = incoming.take(&bytes[at..cut]);
                }
                at = cut;
            }
            let in_pieces = verdict.and_then(|_| incoming.finish());
            let whole = match check_size(&bytes, MAX_VIDEO_BYTES) {
                Err(e) => Err(e),
                Ok(()) => sniff(&bytes).filter(|m| m.is_video()).ok_or(UploadError::NotAVideo),
            };
            prop_assert_eq!(in_pieces, whole);
        }
    }
}
