//! Screenshots of the X display: the root window read with `GetImage`, decoded through its
//! visual's colour masks (x11rb's `image` module) and written as PNG.
//!
//! x11rb rather than the `screenshots` crate (which now points to `xcap`): xcap pulls in
//! Wayland, PipeWire and GBM development libraries and minutes of build for what is one
//! request on X11; the agent already speaks X11 through x11rb, with no C library.

use std::io::Write;
use std::path::{Path, PathBuf};

use x11rb::connection::Connection;
use x11rb::image::{BitsPerPixel, Image, ImageOrder, PixelLayout};
use x11rb::rust_connection::RustConnection;

/// A connection for capturing the screen.
pub struct Screen {
    conn: RustConnection,
    screen: usize,
}

/// An RGB picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height` pixels, three bytes each (red, green, blue), row by row.
    pub rgb: Vec<u8>,
}

impl Screen {
    /// Connects to `display` (or `$DISPLAY`).
    pub fn connect(display: Option<&str>) -> Result<Screen, String> {
        let (conn, screen) =
            x11rb::connect(display).map_err(|e| format!("no X display to capture: {e}"))?;
        Ok(Screen { conn, screen })
    }

    /// The whole screen, now.
    pub fn capture(&self) -> Result<Picture, String> {
        let setup = self.conn.setup();
        let root = &setup.roots[self.screen];
        let (width, height) = (root.width_in_pixels, root.height_in_pixels);
        let (image, visual_id) = Image::get(&self.conn, root.root, 0, 0, width, height)
            .map_err(|e| format!("the X server would not give the screen's image: {e}"))?;
        let visual = root
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == visual_id)
            .ok_or("the screen's visual is not listed by the X server")?;
        let pixels = usize::from(width) * usize::from(height);
        let mut rgb = Vec::with_capacity(pixels * 3);
        let common = image.bits_per_pixel() == BitsPerPixel::B32
            && image.byte_order() == ImageOrder::LsbFirst
            && (visual.red_mask, visual.green_mask, visual.blue_mask)
                == (0x00ff_0000, 0x0000_ff00, 0x0000_00ff)
            && image.data().len() >= pixels * 4;
        if common {
            // Nearly every desktop: 24-bit colour in 32-bit little-endian pixels, B G R x, rows
            // without padding. Copied bytewise (~10× faster than pixel by pixel).
            for px in image.data()[..pixels * 4].chunks_exact(4) {
                rgb.extend_from_slice(&[px[2], px[1], px[0]]);
            }
        } else {
            let layout = PixelLayout::from_visual_type(*visual)
                .map_err(|e| format!("the screen's colours cannot be read: {e}"))?;
            for y in 0..height {
                for x in 0..width {
                    let (r, g, b) = layout.decode(image.get_pixel(x, y));
                    rgb.extend_from_slice(&[(r >> 8) as u8, (g >> 8) as u8, (b >> 8) as u8]);
                }
            }
        }
        Ok(Picture {
            width: u32::from(width),
            height: u32::from(height),
            rgb,
        })
    }
}

impl Picture {
    /// The picture as a PNG file's bytes.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        // Screens compress well and quickly; the best level costs several times the CPU.
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&self.rgb)
            .map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }
}

/// Writes `bytes` as a new owner-only file `name` in `dir` (made owner-only if missing).
/// Screens show whatever was on them: no one else may read them.
pub fn save_private(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_round_trip_through_png() {
        let picture = Picture {
            width: 3,
            height: 2,
            rgb: vec![
                255, 0, 0, 0, 255, 0, 0, 0, 255, //
                1, 2, 3, 4, 5, 6, 7, 8, 9,
            ],
        };
        let bytes = picture.png().expect("png");
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("info");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("frame");
        assert_eq!((info.width, info.height), (3, 2));
        assert_eq!(&buf[..info.buffer_size()], picture.rgb.as_slice());
    }

    #[test]
    fn saved_files_are_owner_only_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tmp");
        let captures = dir.path().join("captures");
        let path = save_private(&captures, "a.png", b"x").expect("save");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&captures), 0o700);
        assert!(save_private(&captures, "a.png", b"y").is_err());
        assert_eq!(std::fs::read(&path).expect("read"), b"x");
    }
}
