//! The screen, as screenshots and video read it: the X display's root window ([`x11`], with
//! the X server's change reports from [`damage`]) or, on a Wayland desktop, what the compositor
//! copies out for its clients ([`screencopy`], wlroots compositors).
//!
//! Which one is the session's to say ([`crate::os::session::Session`]), as for the activity
//! source: on Wayland the X display that Xwayland offers shows none of the Wayland windows, so
//! it is never read there — a desktop that lets no client copy its screen (GNOME and KDE, so
//! far) makes a screenshot fail with that reason, never a picture of an empty X root.

mod damage;
mod screencopy;
mod x11;

use std::io::Write;

use crate::os::session::Session;

/// A rectangle of the screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: u16,
    /// Top edge.
    pub y: u16,
    /// Width.
    pub width: u16,
    /// Height.
    pub height: u16,
}

impl Rect {
    /// The smallest rectangle holding both.
    pub fn union(self, other: Rect) -> Rect {
        let (x, y) = (self.x.min(other.x), self.y.min(other.y));
        Rect {
            x,
            y,
            width: clamp16(self.right().max(other.right()) - u32::from(x)),
            height: clamp16(self.bottom().max(other.bottom()) - u32::from(y)),
        }
    }

    /// The part inside `bounds` (`None`: none of it).
    pub fn within(self, bounds: Rect) -> Option<Rect> {
        let (x, y) = (self.x.max(bounds.x), self.y.max(bounds.y));
        let right = self.right().min(bounds.right());
        let bottom = self.bottom().min(bounds.bottom());
        (right > u32::from(x) && bottom > u32::from(y)).then(|| Rect {
            x,
            y,
            width: clamp16(right - u32::from(x)),
            height: clamp16(bottom - u32::from(y)),
        })
    }

    fn right(self) -> u32 {
        u32::from(self.x) + u32::from(self.width)
    }

    fn bottom(self) -> u32 {
        u32::from(self.y) + u32::from(self.height)
    }
}

fn clamp16(n: u32) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

/// A screenshot, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Shot {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG file's bytes.
    pub png: Vec<u8>,
}

/// Rows read from the screen at a time: the screen is read and encoded in strips, so a
/// screenshot costs a strip of memory (320 KB at 1280 wide), not a whole uncompressed screen
/// twice over (8 MB at 1280×800, 66 MB at 4K) — the agent's footprint stays flat.
const STRIP: u16 = 64;

/// The screen of the session the agent runs in, for screenshots and video.
pub struct Screen {
    kind: Kind,
}

// Both kinds hold a live connection; a process opens one or two screens and keeps them, so
// the size difference costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Kind {
    /// The X display, with its change reports when watched for video.
    X11 {
        screen: x11::Screen,
        changes: Option<damage::ScreenChanges>,
    },
    /// What a wlroots compositor copies out.
    Wayland(screencopy::Screen),
}

impl Screen {
    /// The screen of the session this process runs in (see [`Session`]), for screenshots.
    /// The error says why it cannot be read.
    pub fn open() -> Result<Screen, String> {
        let kind = match Session::here().0 {
            Session::X11 => Kind::X11 {
                screen: x11::Screen::connect(None)?,
                changes: None,
            },
            Session::Wayland => Kind::Wayland(screencopy::Screen::connect()?),
        };
        Ok(Screen { kind })
    }

    /// The screen, followed for video: [`Screen::changed`] says where it changed.
    pub fn watch() -> Result<Screen, String> {
        let mut screen = Screen::open()?;
        match &mut screen.kind {
            Kind::X11 { changes, .. } => *changes = Some(damage::ScreenChanges::watch(None)?),
            Kind::Wayland(s) => s.follow()?,
        }
        Ok(screen)
    }

    /// The whole screen.
    pub fn whole(&self) -> Rect {
        match &self.kind {
            Kind::X11 { screen, .. } => screen.whole(),
            Kind::Wayland(s) => s.whole(),
        }
    }

    /// Where the screen changed since the last call (`None`: nowhere). Reading it afterwards
    /// shows the screen as it was then, or later. A screen not watched has always changed.
    pub fn changed(&mut self) -> Result<Option<Rect>, String> {
        match &mut self.kind {
            Kind::X11 {
                changes: Some(c), ..
            } => c.changed(),
            Kind::X11 { screen, .. } => Ok(Some(screen.whole())),
            Kind::Wayland(s) => s.changed(),
        }
    }

    /// The whole screen, now, as PNG.
    pub fn capture(&mut self) -> Result<Shot, String> {
        if let Kind::Wayland(s) = &mut self.kind {
            s.refresh()?;
        }
        let whole = self.whole();
        Ok(Shot {
            width: u32::from(whole.width),
            height: u32::from(whole.height),
            png: self.capture_rect(whole)?,
        })
    }

    /// A rectangle of the screen as PNG: now on X11; on Wayland, as last copied.
    pub fn capture_rect(&self, rect: Rect) -> Result<Vec<u8>, String> {
        encode_rows(u32::from(rect.width), u32::from(rect.height), |y, rows| {
            self.read_rect(Rect {
                y: rect.y + y,
                height: rows,
                ..rect
            })
        })
    }

    /// A rectangle of the screen as RGB (3 bytes a pixel, rows without padding): now on X11;
    /// on Wayland, as last copied.
    pub fn read_rect(&self, rect: Rect) -> Result<Vec<u8>, String> {
        match &self.kind {
            Kind::X11 { screen, .. } => screen.read_rect(rect),
            Kind::Wayland(s) => s.read_rect(rect),
        }
    }
}

/// Encodes a `width × height` RGB picture as PNG, asking `strip(y, rows)` for its rows a strip
/// at a time (each `rows × width × 3` bytes).
pub fn encode_rows(
    width: u32,
    height: u32,
    mut strip: impl FnMut(u16, u16) -> Result<Vec<u8>, String>,
) -> Result<Vec<u8>, String> {
    let height16 = u16::try_from(height).map_err(|_| "the screen is too tall".to_string())?;
    // The encoder's stream borrows its output for as long as it lives: a shared buffer lets
    // the bytes be taken back once it is done, whichever way it ended.
    let out = SharedBuf::default();
    let mut encoder = png::Encoder::new(out.clone(), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Screens compress well and quickly; the best level costs several times the CPU.
    encoder.set_compression(png::Compression::Fast);
    let writer = encoder.write_header().map_err(|e| e.to_string())?;
    let mut stream = writer.into_stream_writer().map_err(|e| e.to_string())?;
    let mut y = 0u16;
    while y < height16 {
        let rows = STRIP.min(height16 - y);
        let rgb = strip(y, rows)?;
        if rgb.len() != width as usize * usize::from(rows) * 3 {
            return Err(format!("a strip of {} bytes for {rows} rows", rgb.len()));
        }
        stream.write_all(&rgb).map_err(|e| e.to_string())?;
        y += rows;
    }
    stream.finish().map_err(|e| e.to_string())?;
    Ok(out.take())
}

/// A byte buffer with shared ownership.
#[derive(Clone, Default)]
struct SharedBuf(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_join_and_clip() {
        let r = |x, y, width, height| Rect {
            x,
            y,
            width,
            height,
        };
        assert_eq!(r(10, 10, 5, 5).union(r(0, 20, 2, 2)), r(0, 10, 15, 12));
        let screen = r(0, 0, 100, 50);
        assert_eq!(r(90, 40, 30, 30).within(screen), Some(r(90, 40, 10, 10)));
        assert_eq!(r(100, 0, 5, 5).within(screen), None);
    }

    #[test]
    fn strips_make_one_png_of_the_whole_picture() {
        // 3 wide, 130 tall: two full strips and a short one; pixel (x, y) = (x, y, x + y).
        let (w, h) = (3u32, 130u32);
        let mut asked = Vec::new();
        let png = encode_rows(w, h, |y, rows| {
            asked.push((y, rows));
            let mut rgb = Vec::new();
            for row in y..y + rows {
                for x in 0..w as u16 {
                    rgb.extend_from_slice(&[x as u8, row as u8, (x + row) as u8]);
                }
            }
            Ok(rgb)
        })
        .expect("png");
        assert_eq!(asked, [(0, 64), (64, 64), (128, 2)]);
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("info");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (w, h));
        let at = |x: usize, y: usize| &buf[(y * w as usize + x) * 3..][..3];
        assert_eq!(at(2, 129), [2, 129, 131]);
        assert_eq!(at(0, 64), [0, 64, 64]);
        // A strip of the wrong size is an error, not a garbled picture.
        assert!(encode_rows(3, 2, |_, _| Ok(vec![0; 5])).is_err());
    }
}
