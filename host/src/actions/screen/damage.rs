//! Where the screen changed, as the X server's DAMAGE extension reports it (what VNC servers
//! use for the same purpose): the recorder reads only that, and nothing when nothing changed.
//!
//! The reports come on a connection of their own. On the connection that reads the screen they
//! would corrupt it: a server with a software cursor (Xvfb, Xvnc) lifts the cursor off the
//! screen to read under it, and reports that as damage *in the middle of* the image reply.

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::Rect;

/// A subscription to the screen's changes.
pub(crate) struct ScreenChanges {
    conn: RustConnection,
    damage: damage::Damage,
    whole: Rect,
}

impl ScreenChanges {
    /// Starts following the changes of `display`'s screen (`None`: `$DISPLAY`).
    pub(crate) fn watch(display: Option<&str>) -> Result<ScreenChanges, String> {
        let fail = |e: &dyn std::fmt::Display| format!("the X server cannot report changes: {e}");
        let (conn, screen) = x11rb::connect(display).map_err(|e| fail(&e))?;
        // DAMAGE builds on XFIXES regions: both versions are negotiated before use.
        conn.xfixes_query_version(5, 0)
            .map_err(|e| fail(&e))?
            .reply()
            .map_err(|e| fail(&e))?;
        conn.damage_query_version(1, 1)
            .map_err(|e| fail(&e))?
            .reply()
            .map_err(|e| fail(&e))?;
        let damage = conn.generate_id().map_err(|e| fail(&e))?;
        let root = &conn.setup().roots[screen];
        let whole = Rect {
            x: 0,
            y: 0,
            width: root.width_in_pixels,
            height: root.height_in_pixels,
        };
        // Bounding box: one report whenever the changed area grows; `subtract` resets it.
        conn.damage_create(damage, root.root, damage::ReportLevel::BOUNDING_BOX)
            .map_err(|e| fail(&e))?
            .check()
            .map_err(|e| fail(&e))?;
        Ok(ScreenChanges {
            conn,
            damage,
            whole,
        })
    }

    /// Where the screen changed since the last call (`None`: nowhere).
    pub(crate) fn changed(&self) -> Result<Option<Rect>, String> {
        let lost = |e: &dyn std::fmt::Display| format!("the X display is gone: {e}");
        let mut area: Option<Rect> = None;
        while let Some(event) = self.conn.poll_for_event().map_err(|e| lost(&e))? {
            if let Event::DamageNotify(n) = event {
                let r = n.area;
                let rect = Rect {
                    x: r.x.max(0) as u16,
                    y: r.y.max(0) as u16,
                    width: r.width,
                    height: r.height,
                };
                area = Some(area.map_or(rect, |a| a.union(rect)));
            }
        }
        if area.is_some() {
            // Reset before the screen is read: what changes while it is read is reported next.
            self.conn
                .damage_subtract(self.damage, x11rb::NONE, x11rb::NONE)
                .map_err(|e| lost(&e))?;
            self.conn.flush().map_err(|e| lost(&e))?;
        }
        // Clipped to the screen, which reported areas may overhang.
        Ok(area.and_then(|a| a.within(self.whole)))
    }
}
