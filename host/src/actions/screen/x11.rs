//! The X display's screen: the root window read with `GetImage`, decoded through its visual's
//! colour masks (x11rb's `image` module).
//!
//! x11rb rather than the `screenshots` crate (which now points to `xcap`): xcap pulls in
//! Wayland, PipeWire and GBM development libraries and minutes of build for what is one
//! request on X11; the agent already speaks X11 through x11rb, with no C library.

use x11rb::connection::Connection;
use x11rb::image::{BitsPerPixel, Image, ImageOrder, PixelLayout};
use x11rb::rust_connection::RustConnection;

use super::{Rect, STRIP};

/// A connection to the X server for reading its screen.
pub(crate) struct Screen {
    conn: RustConnection,
    screen: usize,
}

impl Screen {
    /// Connects to `display` (or `$DISPLAY`).
    pub(crate) fn connect(display: Option<&str>) -> Result<Screen, String> {
        let (conn, screen) =
            x11rb::connect(display).map_err(|e| format!("no X display to capture: {e}"))?;
        Ok(Screen { conn, screen })
    }

    /// The whole screen.
    pub(crate) fn whole(&self) -> Rect {
        let root = &self.conn.setup().roots[self.screen];
        Rect {
            x: 0,
            y: 0,
            width: root.width_in_pixels,
            height: root.height_in_pixels,
        }
    }

    /// A rectangle of the screen, now, as RGB (3 bytes a pixel, rows without padding).
    pub(crate) fn read_rect(&self, rect: Rect) -> Result<Vec<u8>, String> {
        let mut rgb = Vec::new();
        let mut y = 0;
        while y < rect.height {
            let rows = STRIP.min(rect.height - y);
            rgb.extend_from_slice(&self.rows(rect, rect.y + y, rows)?);
            y += rows;
        }
        Ok(rgb)
    }

    /// Rows `y..y + rows` of the root window within `rect`'s columns, as RGB.
    fn rows(&self, rect: Rect, y: u16, rows: u16) -> Result<Vec<u8>, String> {
        let root = &self.conn.setup().roots[self.screen];
        let width = rect.width;
        let too_big = |_| "the screen is too large".to_string();
        let (x16, y16) = (
            i16::try_from(rect.x).map_err(too_big)?,
            i16::try_from(y).map_err(too_big)?,
        );
        let (image, visual_id) = Image::get(&self.conn, root.root, x16, y16, width, rows)
            .map_err(|e| format!("the X server would not give the screen's image: {e}"))?;
        let visual = root
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == visual_id)
            .ok_or("the screen's visual is not listed by the X server")?;
        let pixels = usize::from(width) * usize::from(rows);
        let mut rgb = Vec::with_capacity(pixels * 3);
        let common = image.bits_per_pixel() == BitsPerPixel::B32
            && image.byte_order() == ImageOrder::LsbFirst
            && (visual.red_mask, visual.green_mask, visual.blue_mask)
                == (0x00ff_0000, 0x0000_ff00, 0x0000_00ff)
            && image.data().len() >= pixels * 4;
        if common {
            // Nearly every desktop: 24-bit colour in 32-bit little-endian pixels, B G R x, rows
            // without padding. Copied bytewise (~3× faster than pixel by pixel).
            for px in image.data()[..pixels * 4].chunks_exact(4) {
                rgb.extend_from_slice(&[px[2], px[1], px[0]]);
            }
        } else {
            let layout = PixelLayout::from_visual_type(*visual)
                .map_err(|e| format!("the screen's colours cannot be read: {e}"))?;
            for row in 0..rows {
                for x in 0..width {
                    let (r, g, b) = layout.decode(image.get_pixel(x, row));
                    rgb.extend_from_slice(&[(r >> 8) as u8, (g >> 8) as u8, (b >> 8) as u8]);
                }
            }
        }
        Ok(rgb)
    }
}
