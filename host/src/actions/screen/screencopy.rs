//! The screen of a wlroots compositor (sway, Hyprland, river, labwc, Wayfire…), as it copies it
//! out for a client through `wlr-screencopy-unstable-v1`: what `grim` and `wf-recorder` use.
//!
//! The compositor copies each output into a shared-memory buffer the agent offers. The buffer
//! is a `memfd` the agent reads back with `pread`, so no memory is mapped and no `unsafe` is
//! needed; the pixels are decoded from the `wl_shm` format the compositor chose.
//!
//! For video, each output has two buffers: the compositor copies into one while the recorder
//! reads the last complete copy from the other. Copies are asked *with damage* (v2 of the
//! protocol): the compositor answers only once something on the output changed and says where,
//! so a screen where nothing moves is not copied at all — as DAMAGE does on X11
//! ([`super::damage`]).
//!
//! Several outputs make one picture, each placed where the compositor's layout puts it
//! (`wl_output` geometry, in pixels at the output's scale).

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use wayland_client::backend::WaylandError;
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_output, wl_registry, wl_shm, wl_shm_pool};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum, delegate_noop};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1 as frame, zwlr_screencopy_manager_v1 as manager,
};

use super::Rect;

/// How long the compositor may take to copy the screen before the copy counts as failed.
const PATIENCE: Duration = Duration::from_secs(5);

/// The largest output buffer accepted (an 8K output at 4 bytes a pixel is 127 MiB).
const MAX_BUFFER: u64 = 256 << 20;

/// How one output's picture lies in its buffer, as the compositor asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    format: wl_shm::Format,
    width: u32,
    height: u32,
    stride: u32,
}

impl Layout {
    /// The layout the compositor offered, if its pixels can be read and its size is sane.
    fn offered(
        format: WEnum<wl_shm::Format>,
        width: u32,
        height: u32,
        stride: u32,
    ) -> Option<Layout> {
        let WEnum::Value(format) = format else {
            return None;
        };
        let readable = matches!(
            format,
            wl_shm::Format::Argb8888
                | wl_shm::Format::Xrgb8888
                | wl_shm::Format::Abgr8888
                | wl_shm::Format::Xbgr8888
        );
        let fits = width > 0
            && height > 0
            && width <= u32::from(u16::MAX)
            && height <= u32::from(u16::MAX)
            && u64::from(stride) >= u64::from(width) * 4
            && u64::from(stride) * u64::from(height) <= MAX_BUFFER;
        (readable && fits).then_some(Layout {
            format,
            width,
            height,
            stride,
        })
    }

    fn bytes(&self) -> u64 {
        u64::from(self.stride) * u64::from(self.height)
    }

    /// Appends the RGB of `pixels` (4 bytes each, in this layout's format) to `rgb`.
    fn decode(&self, pixels: &[u8], rgb: &mut Vec<u8>) {
        // Little-endian words: xRGB is B G R x in memory, xBGR is R G B x.
        let bgr = matches!(
            self.format,
            wl_shm::Format::Argb8888 | wl_shm::Format::Xrgb8888
        );
        for px in pixels.chunks_exact(4) {
            if bgr {
                rgb.extend_from_slice(&[px[2], px[1], px[0]]);
            } else {
                rgb.extend_from_slice(&px[..3]);
            }
        }
    }
}

/// What the compositor has said of the frame being copied for one output.
#[derive(Default)]
struct Progress {
    /// The first buffer layout offered that can be read.
    offered: Option<Layout>,
    /// The formats offered that cannot be, for the error.
    unreadable: Vec<String>,
    /// Every buffer layout has been offered: the copy can be asked for.
    announced: bool,
    y_invert: bool,
    /// Where the output changed since the last copy, in the output's pixels.
    damage: Option<Rect>,
    ready: bool,
    failed: bool,
}

/// Where an output sits in the compositor's layout.
#[derive(Default)]
struct Placement {
    x: i32,
    y: i32,
    scale: i32,
}

/// What the compositor's events change, between two dispatches.
struct State {
    /// The screencopy version spoken: buffer offers end with `buffer_done` from version 3.
    version: u32,
    placements: Vec<Placement>,
    progress: Vec<Progress>,
}

/// A buffer the compositor copies one output into.
struct Slot {
    file: File,
    pool: wl_shm_pool::WlShmPool,
    buffer: wl_buffer::WlBuffer,
    layout: Layout,
}

impl Slot {
    fn new(shm: &wl_shm::WlShm, layout: Layout, qh: &QueueHandle<State>) -> Result<Slot, String> {
        let fail = |e: &dyn std::fmt::Display| format!("no memory to copy the screen into: {e}");
        let fd = memfd_create(c"vigilo-screen", MFdFlags::MFD_CLOEXEC).map_err(|e| fail(&e))?;
        let file = File::from(fd);
        file.set_len(layout.bytes()).map_err(|e| fail(&e))?;
        // `Layout::offered` bounds every size well inside i32.
        let size = i32::try_from(layout.bytes()).map_err(|e| fail(&e))?;
        let pool = shm.create_pool(file.as_fd(), size, qh, ());
        let buffer = pool.create_buffer(
            0,
            layout.width as i32,
            layout.height as i32,
            layout.stride as i32,
            layout.format,
            qh,
            (),
        );
        Ok(Slot {
            file,
            pool,
            buffer,
            layout,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.buffer.destroy();
        self.pool.destroy();
    }
}

/// One output and the copies of it.
struct Output {
    output: wl_output::WlOutput,
    /// Two buffers: the compositor copies into one while the other is read.
    slots: [Option<Slot>; 2],
    /// The slot with the last complete copy, and whether its rows are upside down.
    current: Option<(usize, bool)>,
    /// The copy under way, and the slot it goes into.
    pending: Option<(frame::ZwlrScreencopyFrameV1, usize)>,
    /// Where the output's picture starts in the whole screen.
    at: (u16, u16),
}

impl Output {
    /// The last complete copy.
    fn copied(&self) -> Option<(&Slot, bool)> {
        let (slot, y_invert) = self.current?;
        Some((self.slots[slot].as_ref()?, y_invert))
    }
}

/// A wlroots compositor's screen, copied out on request.
pub(crate) struct Screen {
    queue: EventQueue<State>,
    state: State,
    manager: manager::ZwlrScreencopyManagerV1,
    shm: wl_shm::WlShm,
    outputs: Vec<Output>,
    whole: Rect,
    /// `WAYLAND_DISPLAY`, for the errors.
    display: String,
}

impl Screen {
    /// Connects to the compositor at `$WAYLAND_DISPLAY` and copies every output once. The
    /// error says why the screen cannot be copied, for the admin.
    pub(crate) fn connect() -> Result<Screen, String> {
        let display = std::env::var("WAYLAND_DISPLAY").unwrap_or_else(|_| "wayland-0".into());
        let conn = Connection::connect_to_env()
            .map_err(|e| format!("cannot connect to Wayland display {display}: {e}"))?;
        let (globals, mut queue) = registry_queue_init::<State>(&conn)
            .map_err(|e| format!("Wayland display {display}: {e}"))?;
        let qh = queue.handle();
        let manager: manager::ZwlrScreencopyManagerV1 =
            globals.bind(&qh, 1..=3, ()).map_err(|e| {
                format!(
                    "the compositor on Wayland display {display} lets no client copy its screen \
                     (no zwlr_screencopy_manager_v1: {e}); wlroots compositors do, GNOME and \
                     KDE are not supported yet"
                )
            })?;
        let shm: wl_shm::WlShm = globals
            .bind(&qh, 1..=1, ())
            .map_err(|e| format!("the compositor on {display} shares no memory (wl_shm): {e}"))?;
        let listed = globals.contents().with_list(|list| {
            list.iter()
                .filter(|g| g.interface == wl_output::WlOutput::interface().name)
                .map(|g| (g.name, g.version))
                .collect::<Vec<_>>()
        });
        if listed.is_empty() {
            return Err(format!("the compositor on {display} has no output to copy"));
        }
        let outputs = listed
            .iter()
            .enumerate()
            .map(|(i, (name, version))| Output {
                output: globals.registry().bind(*name, (*version).min(2), &qh, i),
                slots: [None, None],
                current: None,
                pending: None,
                at: (0, 0),
            })
            .collect::<Vec<_>>();
        let mut state = State {
            version: manager.version(),
            placements: outputs.iter().map(|_| Placement::default()).collect(),
            progress: outputs.iter().map(|_| Progress::default()).collect(),
        };
        queue
            .roundtrip(&mut state)
            .map_err(|e| format!("Wayland display {display}: {e}"))?;
        let mut screen = Screen {
            queue,
            state,
            manager,
            shm,
            outputs,
            whole: Rect {
                x: 0,
                y: 0,
                width: 0,
                height: 0,
            },
            display,
        };
        screen.refresh()?;
        Ok(screen)
    }

    /// The whole screen: every output, as last copied.
    pub(crate) fn whole(&self) -> Rect {
        self.whole
    }

    /// Copies every output now, waiting for the compositor.
    pub(crate) fn refresh(&mut self) -> Result<(), String> {
        for i in 0..self.outputs.len() {
            self.forget(i);
            self.ask(i, false)?;
        }
        self.wait(|state| state.progress.iter().all(|p| p.ready || p.failed))?;
        for i in 0..self.outputs.len() {
            self.finish(i)?;
        }
        self.place()
    }

    /// From now on, asks the compositor for each output's next change ([`Screen::changed`]).
    pub(crate) fn follow(&mut self) -> Result<(), String> {
        for i in 0..self.outputs.len() {
            if self.outputs[i].pending.is_none() {
                self.ask(i, true)?;
            }
        }
        Ok(())
    }

    /// Where the screen changed since the last call (`None`: nowhere, or the compositor has not
    /// finished copying it yet). Does not wait.
    pub(crate) fn changed(&mut self) -> Result<Option<Rect>, String> {
        self.dispatch(Duration::ZERO)?;
        let mut area: Option<Rect> = None;
        for i in 0..self.outputs.len() {
            let progress = &self.state.progress[i];
            if self.outputs[i].pending.is_none() || !(progress.ready || progress.failed) {
                continue;
            }
            let before = self.outputs[i].copied().map(|(s, _)| s.layout);
            let damage = self.finish(i)?;
            let after = self.outputs[i].copied().map(|(s, _)| s.layout);
            if before.map(|l| (l.width, l.height)) != after.map(|l| (l.width, l.height)) {
                return Err("the screen changed size".into());
            }
            area = Some(area.map_or(damage, |a| a.union(damage)));
            self.ask(i, true)?;
        }
        Ok(area.and_then(|a| a.within(self.whole)))
    }

    /// A rectangle of the screen as last copied, as RGB (3 bytes a pixel, rows without
    /// padding); black where no output is.
    pub(crate) fn read_rect(&self, rect: Rect) -> Result<Vec<u8>, String> {
        let (width, height) = (usize::from(rect.width), usize::from(rect.height));
        let mut rgb = vec![0u8; width * height * 3];
        let mut pixels = Vec::new();
        let mut decoded = Vec::new();
        for output in &self.outputs {
            let Some((slot, y_invert)) = output.copied() else {
                continue;
            };
            let layout = slot.layout;
            let placed = Rect {
                x: output.at.0,
                y: output.at.1,
                width: layout.width as u16,
                height: layout.height as u16,
            };
            let Some(part) = rect.within(placed) else {
                continue;
            };
            let columns = usize::from(part.width);
            pixels.resize(columns * 4, 0);
            for y in part.y..part.y + part.height {
                let mut row = u64::from(y - placed.y);
                if y_invert {
                    row = u64::from(layout.height) - 1 - row;
                }
                let offset = row * u64::from(layout.stride) + u64::from(part.x - placed.x) * 4;
                slot.file
                    .read_exact_at(&mut pixels, offset)
                    .map_err(|e| format!("the screen's copy cannot be read: {e}"))?;
                decoded.clear();
                layout.decode(&pixels, &mut decoded);
                let start = (usize::from(y - rect.y) * width + usize::from(part.x - rect.x)) * 3;
                rgb[start..start + columns * 3].copy_from_slice(&decoded);
            }
        }
        Ok(rgb)
    }

    /// Asks the compositor to copy output `i` into its free slot (`damage`: once it changed).
    fn ask(&mut self, i: usize, damage: bool) -> Result<(), String> {
        let qh = self.queue.handle();
        self.state.progress[i] = Progress::default();
        let frame = self
            .manager
            .capture_output(0, &self.outputs[i].output, &qh, i);
        if let Err(e) = self.wait(|state| state.progress[i].announced || state.progress[i].failed) {
            frame.destroy();
            return Err(e);
        }
        let progress = &self.state.progress[i];
        let layout = match progress.offered {
            Some(layout) if !progress.failed => layout,
            _ => {
                let why = if progress.failed {
                    "the compositor would not copy the screen".to_string()
                } else {
                    format!(
                        "the compositor offers the screen only as {} (readable: 8-bit RGB)",
                        progress.unreadable.join(", ")
                    )
                };
                frame.destroy();
                return Err(why);
            }
        };
        let output = &mut self.outputs[i];
        let free = output.current.map_or(0, |(slot, _)| 1 - slot);
        if output.slots[free]
            .as_ref()
            .is_none_or(|slot| slot.layout != layout)
        {
            output.slots[free] = None;
            match Slot::new(&self.shm, layout, &qh) {
                Ok(slot) => output.slots[free] = Some(slot),
                Err(e) => {
                    frame.destroy();
                    return Err(e);
                }
            }
        }
        if let Some(slot) = &output.slots[free] {
            if damage && self.state.version >= 2 {
                frame.copy_with_damage(&slot.buffer);
            } else {
                frame.copy(&slot.buffer);
            }
        }
        output.pending = Some((frame, free));
        Ok(())
    }

    /// Takes output `i`'s finished copy as its current one; returns where it changed, on the
    /// whole screen.
    fn finish(&mut self, i: usize) -> Result<Rect, String> {
        let output = &mut self.outputs[i];
        let Some((frame, slot)) = output.pending.take() else {
            return Err("no copy of the screen was under way".into());
        };
        frame.destroy();
        let progress = &self.state.progress[i];
        if !progress.ready {
            return Err("the compositor could not copy the screen".into());
        }
        output.current = Some((slot, progress.y_invert));
        let layout = output.slots[slot]
            .as_ref()
            .map(|s| s.layout)
            .ok_or("the screen's copy went missing")?;
        let damage = progress.damage.unwrap_or(Rect {
            x: 0,
            y: 0,
            width: layout.width as u16,
            height: layout.height as u16,
        });
        Ok(Rect {
            x: damage.x.saturating_add(output.at.0),
            y: damage.y.saturating_add(output.at.1),
            ..damage
        })
    }

    /// Drops output `i`'s copy under way, if any.
    fn forget(&mut self, i: usize) {
        if let Some((frame, _)) = self.outputs[i].pending.take() {
            frame.destroy();
        }
    }

    /// Places the outputs on the whole screen by their positions in the compositor's layout.
    fn place(&mut self) -> Result<(), String> {
        let too_big = || "the screen is too large (over 65,535 pixels across)".to_string();
        let spots = self
            .outputs
            .iter()
            .zip(&self.state.placements)
            .map(|(o, p)| {
                let scale = i64::from(p.scale.max(1));
                let size = o
                    .copied()
                    .map_or((0, 0), |(s, _)| (s.layout.width, s.layout.height));
                (i64::from(p.x) * scale, i64::from(p.y) * scale, size)
            })
            .collect::<Vec<_>>();
        let left = spots.iter().map(|s| s.0).min().unwrap_or(0);
        let top = spots.iter().map(|s| s.1).min().unwrap_or(0);
        let (mut right, mut bottom) = (0, 0);
        for (output, (x, y, (w, h))) in self.outputs.iter_mut().zip(spots) {
            let at = (x - left, y - top);
            output.at = (
                u16::try_from(at.0).map_err(|_| too_big())?,
                u16::try_from(at.1).map_err(|_| too_big())?,
            );
            right = right.max(at.0 + i64::from(w));
            bottom = bottom.max(at.1 + i64::from(h));
        }
        self.whole = Rect {
            x: 0,
            y: 0,
            width: u16::try_from(right).map_err(|_| too_big())?,
            height: u16::try_from(bottom).map_err(|_| too_big())?,
        };
        Ok(())
    }

    /// Waits (at most [`PATIENCE`]) until `done` says the compositor has answered.
    fn wait(&mut self, done: impl Fn(&State) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if done(&self.state) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "the compositor on {} did not copy the screen within {} s",
                    self.display,
                    PATIENCE.as_secs()
                ));
            }
            self.dispatch(left)?;
        }
    }

    /// Handles what the compositor sent, waiting up to `timeout` for something to arrive.
    fn dispatch(&mut self, timeout: Duration) -> Result<(), String> {
        let display = &self.display;
        let lost =
            |e: &dyn std::fmt::Display| format!("the Wayland display {display} went away: {e}");
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(|e| lost(&e))?;
        self.queue.flush().map_err(|e| lost(&e))?;
        if let Some(guard) = self.queue.prepare_read() {
            let readable = {
                let mut fds = [PollFd::new(guard.connection_fd(), PollFlags::POLLIN)];
                let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
                poll(&mut fds, timeout)
            };
            match readable {
                Ok(0) | Err(Errno::EINTR) => {}
                Ok(_) => match guard.read() {
                    Ok(_) => {}
                    Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(lost(&e)),
                },
                Err(e) => return Err(lost(&e)),
            }
        }
        self.queue
            .dispatch_pending(&mut self.state)
            .map_err(|e| lost(&e))?;
        Ok(())
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        for i in 0..self.outputs.len() {
            self.forget(i);
        }
        self.manager.destroy();
        // The buffers go with their slots; a last flush sends it all before the socket closes.
        self.outputs.clear();
        let _ = self.queue.flush();
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        // An output plugged in later is copied by the next connection (the recorder's next
        // start, the worker's next screenshot after a failure).
    }
}

impl Dispatch<wl_output::WlOutput, usize> for State {
    fn event(
        state: &mut Self,
        _: &wl_output::WlOutput,
        event: wl_output::Event,
        i: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let Some(placement) = state.placements.get_mut(*i) else {
            return;
        };
        match event {
            wl_output::Event::Geometry { x, y, .. } => (placement.x, placement.y) = (x, y),
            wl_output::Event::Scale { factor } => placement.scale = factor,
            _ => {}
        }
    }
}

impl Dispatch<frame::ZwlrScreencopyFrameV1, usize> for State {
    fn event(
        state: &mut Self,
        _: &frame::ZwlrScreencopyFrameV1,
        event: frame::Event,
        i: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let version = state.version;
        let Some(progress) = state.progress.get_mut(*i) else {
            return;
        };
        match event {
            frame::Event::Buffer {
                format,
                width,
                height,
                stride,
            } => {
                match Layout::offered(format, width, height, stride) {
                    Some(layout) => {
                        progress.offered.get_or_insert(layout);
                    }
                    None => progress
                        .unreadable
                        .push(format!("{format:?} {width}×{height}")),
                }
                // Before version 3 the one buffer offer is all there is.
                if version < 3 {
                    progress.announced = true;
                }
            }
            frame::Event::BufferDone => progress.announced = true,
            frame::Event::Flags { flags } => {
                progress.y_invert =
                    matches!(flags, WEnum::Value(f) if f.contains(frame::Flags::YInvert));
            }
            frame::Event::Damage {
                x,
                y,
                width,
                height,
            } => {
                let clamp = |n: u32| u16::try_from(n).unwrap_or(u16::MAX);
                let rect = Rect {
                    x: clamp(x),
                    y: clamp(y),
                    width: clamp(width),
                    height: clamp(height),
                };
                progress.damage = Some(progress.damage.map_or(rect, |d| d.union(rect)));
            }
            frame::Event::Ready { .. } => progress.ready = true,
            frame::Event::Failed => progress.failed = true,
            _ => {}
        }
    }
}

delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: manager::ZwlrScreencopyManagerV1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_readable_sane_buffers_are_taken() {
        let value = WEnum::Value;
        let l = Layout::offered(value(wl_shm::Format::Xrgb8888), 4, 2, 16).expect("xrgb");
        assert_eq!(l.bytes(), 32);
        assert!(Layout::offered(value(wl_shm::Format::Rgb565), 4, 2, 8).is_none());
        assert!(Layout::offered(WEnum::Unknown(0x1234), 4, 2, 16).is_none());
        assert!(
            Layout::offered(value(wl_shm::Format::Xrgb8888), 4, 2, 12).is_none(),
            "a stride shorter than a row"
        );
        assert!(
            Layout::offered(value(wl_shm::Format::Argb8888), 60_000, 60_000, 240_000).is_none(),
            "13 GiB is not a screen"
        );
        assert!(Layout::offered(value(wl_shm::Format::Argb8888), 0, 2, 16).is_none());
    }

    #[test]
    fn both_byte_orders_decode_to_rgb() {
        let xrgb = Layout::offered(WEnum::Value(wl_shm::Format::Xrgb8888), 1, 1, 4).expect("x");
        let xbgr = Layout::offered(WEnum::Value(wl_shm::Format::Xbgr8888), 1, 1, 4).expect("x");
        let (mut a, mut b) = (Vec::new(), Vec::new());
        xrgb.decode(&[0x30, 0x20, 0x10, 0xff, 1, 2, 3, 0], &mut a);
        xbgr.decode(&[0x10, 0x20, 0x30, 0xff], &mut b);
        assert_eq!(a, [0x10, 0x20, 0x30, 3, 2, 1]);
        assert_eq!(b, [0x10, 0x20, 0x30]);
    }
}
