//! Screen video as the recorder keeps it and as the video action saves it.
//!
//! The recorder ([`super::recorder`]) keeps a rolling [`Ring`] of frames: a *key* frame (the
//! whole screen) every few seconds and, between them, only the rectangle that changed, each
//! compressed as a small PNG. A screen where nothing moves costs nothing; typing in a terminal
//! costs a strip of one line.
//!
//! A clip is saved as an **animated PNG** (APNG): Chromium, Firefox and Safari play it in an
//! `<img>`, it is lossless (the text on screen stays readable, which is the point of evidence),
//! and its frames may be sub-rectangles with their own display time — exactly what the ring
//! holds, so a clip is mostly copied, not re-encoded as a whole. It needs no codec library: the
//! `png` crate the screenshots use writes it. (Animated WebP needs libwebp, MP4 an H.264
//! encoder such as OpenH264 — C/C++ libraries and minutes of build — and both are lossy.)

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::{DateTime, Utc};

/// One recorded frame: the part of the screen that changed, at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// When it was on the screen.
    pub at: DateTime<Utc>,
    /// Left edge of the changed rectangle.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// The rectangle's pixels (RGB), as PNG.
    pub png: Vec<u8>,
    /// The whole screen (a clip can start here without what came before).
    pub key: bool,
}

/// Frames in time order, oldest first, for a screen of one size.
#[derive(Debug, Default)]
pub struct Ring {
    frames: VecDeque<Arc<Frame>>,
    bytes: usize,
}

impl Ring {
    /// Appends the newest frame. A frame older than the newest, or a delta with no key frame
    /// before it, is refused (it could not be played back).
    pub fn push(&mut self, frame: Frame) -> bool {
        let in_order = self.frames.back().is_none_or(|last| last.at <= frame.at);
        if !in_order || (self.frames.is_empty() && !frame.key) {
            return false;
        }
        self.bytes += frame.png.len();
        self.frames.push_back(Arc::new(frame));
        true
    }

    /// Forgets what no clip starting at or after `since` needs: everything before the last key
    /// frame at or before `since`.
    pub fn forget_before(&mut self, since: DateTime<Utc>) {
        let keep_from = self
            .frames
            .iter()
            .rposition(|f| f.key && f.at <= since)
            .unwrap_or(0);
        for f in self.frames.drain(..keep_from) {
            self.bytes -= f.png.len();
        }
    }

    /// Forgets everything (the screen changed size, or no one wants video any more).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }

    /// The frames a clip from `from` to `until` is made of: from the last key frame at or
    /// before `from` (or the first one after it, when the recording started later) to the last
    /// frame at or before `until`.
    pub fn clip(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Arc<Frame>> {
        let start = self
            .frames
            .iter()
            .rposition(|f| f.key && f.at <= from)
            .or_else(|| self.frames.iter().position(|f| f.key))
            .unwrap_or(self.frames.len());
        self.frames
            .iter()
            .skip(start)
            .take_while(|f| f.at <= until)
            .cloned()
            .collect()
    }

    /// How many frames are kept.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// The compressed size of what is kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// A saved clip.
#[derive(Debug)]
pub struct Clip {
    /// The APNG file's bytes.
    pub apng: Vec<u8>,
    /// Frames in it.
    pub frames: usize,
    /// Where it starts (later than asked when the recording had not been running that long).
    pub from: DateTime<Utc>,
    /// Where it ends.
    pub until: DateTime<Utc>,
}

/// Writes the clip from `from` to `until` of a `width × height` screen as an animated PNG,
/// from `frames` as [`Ring::clip`] gives them. Its first frame is the whole screen as it was at
/// `from`; each next one is the rectangle that changed, shown until the next change.
pub fn encode_clip(
    width: u32,
    height: u32,
    frames: &[Arc<Frame>],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Clip, String> {
    let first = frames.first().ok_or("no frames were recorded")?;
    // The screen as it was at the clip's start: the key frame and the changes up to `from`.
    let mut canvas = Canvas::new(width, height);
    let mut rest = frames.iter().peekable();
    while let Some(f) = rest.next_if(|f| f.at <= from || Arc::ptr_eq(f, first)) {
        canvas.paint(f)?;
    }
    let from = from.max(first.at);
    let shown: Vec<(DateTime<Utc>, &Arc<Frame>)> = rest.map(|f| (f.at, f)).collect();
    let count = u32::try_from(shown.len() + 1).map_err(|_| "too many frames".to_string())?;

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let err = |e: png::EncodingError| format!("cannot write the video: {e}");
    // Played once; a viewer reloads it to play again.
    encoder.set_animated(count, 1).map_err(err)?;
    let mut writer = encoder.write_header().map_err(err)?;
    // Each frame stays until the next one (the last until the clip's end).
    let mut starts: Vec<DateTime<Utc>> = std::iter::once(from)
        .chain(shown.iter().map(|(at, _)| *at))
        .collect();
    starts.push(until.max(*starts.last().unwrap_or(&from)));
    let delay = |i: usize| centiseconds(starts[i + 1] - starts[i]);

    writer.set_frame_delay(delay(0), 100).map_err(err)?;
    writer.write_image_data(&canvas.rgb).map_err(err)?;
    for (i, (_, frame)) in shown.iter().enumerate() {
        let (rect, rgb) = decode(frame)?;
        if frame.x + rect.0 > width || frame.y + rect.1 > height {
            return Err(format!(
                "a frame of {}×{} at ({}, {}) is outside the {width}×{height} screen",
                rect.0, rect.1, frame.x, frame.y
            ));
        }
        // Position first at the origin: the writer checks each setting against the other.
        writer.set_frame_position(0, 0).map_err(err)?;
        writer.set_frame_dimension(rect.0, rect.1).map_err(err)?;
        writer.set_frame_position(frame.x, frame.y).map_err(err)?;
        writer.set_frame_delay(delay(i + 1), 100).map_err(err)?;
        writer.set_blend_op(png::BlendOp::Source).map_err(err)?;
        writer.write_image_data(&rgb).map_err(err)?;
    }
    writer.finish().map_err(err)?;
    Ok(Clip {
        apng: out,
        frames: count as usize,
        from,
        until,
    })
}

/// APNG frame delays are 16-bit fractions: hundredths of a second go to 655 s, more than the
/// longest clip.
fn centiseconds(d: chrono::Duration) -> u16 {
    let cs = d.num_milliseconds().max(0) / 10;
    u16::try_from(cs).unwrap_or(u16::MAX)
}

/// Encodes the RGB rectangle `rgb` (`width` wide) as a frame's PNG.
pub fn encode_rect(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>, String> {
    let row = width as usize * 3;
    super::screen::encode_rows(width, height, |y, rows| {
        let start = usize::from(y) * row;
        rgb.get(start..start + usize::from(rows) * row)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| "the rectangle is shorter than its height".to_string())
    })
}

/// A frame's rectangle: its (width, height) and RGB pixels.
fn decode(frame: &Frame) -> Result<((u32, u32), Vec<u8>), String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(&frame.png));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("a recorded frame is unreadable: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or("a recorded frame is too large")?;
    let mut rgb = vec![0; size];
    let info = reader
        .next_frame(&mut rgb)
        .map_err(|e| format!("a recorded frame is unreadable: {e}"))?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err("a recorded frame is not 8-bit RGB".into());
    }
    rgb.truncate(info.buffer_size());
    Ok(((info.width, info.height), rgb))
}

/// The whole screen, painted frame by frame.
struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            rgb: vec![0; width as usize * height as usize * 3],
        }
    }

    fn paint(&mut self, frame: &Frame) -> Result<(), String> {
        let ((w, h), rgb) = decode(frame)?;
        if frame.x + w > self.width || frame.y + h > self.height {
            return Err("a recorded frame is outside the screen".into());
        }
        let (row, canvas_row) = (w as usize * 3, self.width as usize * 3);
        for (r, src) in rgb.chunks_exact(row).enumerate() {
            let at = (frame.y as usize + r) * canvas_row + frame.x as usize * 3;
            self.rgb[at..at + row].copy_from_slice(src);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: u32 = 8;
    const H: u32 = 6;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    /// A screen of one colour.
    fn screen(c: u8) -> Vec<u8> {
        vec![c; (W * H * 3) as usize]
    }

    /// The RGB pixels of the rectangle (x, y, w, h) of a picture `width` wide.
    fn crop(rgb: &[u8], width: u32, (x, y, w, h): (u32, u32, u32, u32)) -> Vec<u8> {
        let (row, out_row) = (width as usize * 3, w as usize * 3);
        let mut out = Vec::with_capacity(out_row * h as usize);
        for r in y as usize..(y + h) as usize {
            let start = r * row + x as usize * 3;
            out.extend_from_slice(&rgb[start..start + out_row]);
        }
        out
    }

    /// A frame of the rectangle `rect` (x, y, w, h) of `screen`; the whole screen is a key.
    fn frame(s: i64, rect: Option<(u32, u32, u32, u32)>, screen: &[u8]) -> Frame {
        let whole = (0, 0, W, H);
        let r = rect.unwrap_or(whole);
        Frame {
            at: at(s),
            x: r.0,
            y: r.1,
            png: encode_rect(r.2, r.3, &crop(screen, W, r)).expect("png"),
            key: rect.is_none(),
        }
    }

    const ALL: Option<(u32, u32, u32, u32)> = Some((0, 0, W, H));

    #[test]
    fn keeps_what_a_clip_may_need_and_no_more() {
        let mut ring = Ring::default();
        let (a, b) = (screen(1), screen(2));
        assert!(!ring.push(frame(0, ALL, &b)), "a delta cannot come first");
        assert!(ring.push(frame(0, None, &a)));
        assert!(ring.push(frame(5, ALL, &b)));
        assert!(ring.push(frame(10, None, &b)));
        assert!(ring.push(frame(12, ALL, &a)));
        assert!(!ring.push(frame(11, None, &a)), "out of order");
        // A clip from 7 s needs the key frame at 0 and the change at 5.
        assert_eq!(ring.clip(at(7), at(20)).len(), 4);
        ring.forget_before(at(7));
        assert_eq!(ring.len(), 4);
        ring.forget_before(at(11));
        assert_eq!(ring.len(), 2, "the key frame at 10 is enough now");
        assert!(ring.bytes() > 0);
        // A clip asked from before the recording began starts at its first key frame.
        assert_eq!(ring.clip(at(-30), at(11)).len(), 1);
        ring.clear();
        assert!(ring.len() == 0 && ring.bytes() == 0);
    }

    /// Plays an APNG back: each frame's display time and the screen after it.
    fn play(apng: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let decoder = png::Decoder::new(std::io::Cursor::new(apng));
        let mut reader = decoder.read_info().expect("info");
        let mut canvas = screen(0);
        let mut out = Vec::new();
        let frames = reader
            .info()
            .animation_control()
            .expect("animated")
            .num_frames;
        for _ in 0..frames {
            let mut buf = vec![0; reader.output_buffer_size().expect("size")];
            let info = reader.next_frame(&mut buf).expect("frame");
            let fc = reader.info().frame_control().expect("fcTL");
            let row = info.width as usize * 3;
            for r in 0..info.height as usize {
                let at = (fc.y_offset as usize + r) * W as usize * 3 + fc.x_offset as usize * 3;
                canvas[at..at + row].copy_from_slice(&buf[r * row..(r + 1) * row]);
            }
            out.push((fc.delay_num, canvas.clone()));
        }
        out
    }

    #[test]
    fn a_clip_plays_the_screen_as_it_was_from_start_to_end() {
        let (a, mut b) = (screen(10), screen(10));
        b[3 * 3..3 * 3 + 3].copy_from_slice(&[200, 0, 0]);
        let c = screen(30);
        let mut ring = Ring::default();
        ring.push(frame(0, None, &a));
        ring.push(frame(4, Some((3, 0, 1, 1)), &b));
        ring.push(frame(9, ALL, &c));
        ring.push(frame(30, ALL, &a));
        // From 6 s to 20 s: the screen as at 6 s (b) for 3 s, then c until the end.
        let frames = ring.clip(at(6), at(20));
        let clip = encode_clip(W, H, &frames, at(6), at(20)).expect("clip");
        assert_eq!(clip.frames, 2);
        let played = play(&clip.apng);
        assert_eq!(played, [(300, b), (1100, c)]);
        // A clip of a screen where nothing moved is one frame shown the whole time.
        let still = encode_clip(W, H, &ring.clip(at(0), at(2)), at(0), at(2)).expect("clip");
        assert_eq!(play(&still.apng), [(200, a)]);
        assert!(encode_clip(W, H, &[], at(0), at(1)).is_err());
    }
}
