//! The stream hub: one room slot per (app, room), holding the latest frame.
//!
//! A frame is encoded once as a multipart part ([`Part`]) and shared as
//! `Bytes`; fan-out clones handles, never bytes. Each room publishes through
//! a `watch` channel, which is exactly the skip-to-newest queue of depth one
//! the design asks for: the camera never waits for a viewer, a slow viewer
//! simply sees the newest frame when it is ready again, a new viewer gets the
//! latest frame at once, and memory per room is one frame plus the frames
//! viewers are still writing.
//!
//! A slot lives while it has a publisher or a viewer; guards remove it when
//! the last of them goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use camgate_protocols::multipart::Part;
use camgate_sfu::SourceKind;
use tokio::sync::watch;

/// One frame as published to viewers.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The encoded multipart part; [`Part::jpeg`] is the JPEG alone.
    pub part: Part,
    /// Sequence number given by the hub, per room.
    pub seq: u64,
    /// When the hub received it.
    pub received_at: Instant,
}

/// Identifies a room slot: app name and namespaced room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoomKey {
    /// App name.
    pub app: String,
    /// Namespaced room.
    pub room: String,
}

/// A room slot.
#[derive(Debug)]
pub struct Room {
    key: RoomKey,
    frames: watch::Sender<Option<Frame>>,
    viewers: watch::Sender<usize>,
    publisher: Mutex<Option<Seat>>,
    next_seq: AtomicU64,
}

/// Who holds a room's publisher seat.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seat {
    kind: SourceKind,
    /// The credential publishing (a camera key id): the same owner may take
    /// the seat over from its own older connection, another may not.
    owner: String,
    /// The connection holding it.
    conn: u64,
}

/// The room already has a publisher with another credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room already has a live publisher")]
pub struct RoomBusy;

impl Room {
    /// The room's key.
    pub fn key(&self) -> &RoomKey {
        &self.key
    }

    /// Viewers watching now.
    pub fn viewer_count(&self) -> usize {
        *self.viewers.borrow()
    }

    /// Follows the viewer count (for the camera's rate control).
    pub fn watch_viewers(&self) -> watch::Receiver<usize> {
        self.viewers.subscribe()
    }

    /// The latest frame, if any.
    pub fn latest(&self) -> Option<Frame> {
        self.frames.borrow().clone()
    }

    /// The kind of source publishing now.
    pub fn publisher(&self) -> Option<SourceKind> {
        self.publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.kind)
    }

    /// The credential publishing now (camera key id, ingress id, WHIP
    /// session).
    pub fn publisher_owner(&self) -> Option<String> {
        self.publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.owner.clone())
    }

    /// True when someone other than `owner` publishes here now.
    pub fn is_busy_for(&self, owner: &str) -> bool {
        self.publisher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| s.owner != owner)
    }

    /// Follows the room's frames without counting as a viewer (for
    /// transcoders, whose consumers are counted where they watch).
    pub fn subscribe_frames(&self) -> watch::Receiver<Option<Frame>> {
        self.frames.subscribe()
    }

    /// Publishes one JPEG: encodes the part once and wakes every viewer.
    pub fn publish(&self, jpeg: &[u8], received_at: Instant) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let frame = Frame {
            part: Part::encode(jpeg),
            seq,
            received_at,
        };
        self.frames.send_replace(Some(frame));
    }
}

/// All room slots of this node.
#[derive(Debug, Default)]
pub struct Hub {
    rooms: Mutex<HashMap<RoomKey, Arc<Room>>>,
    viewers_total: AtomicUsize,
    publishers_total: AtomicUsize,
    /// Viewers allowed per room (0 = unlimited).
    max_viewers: AtomicUsize,
}

/// Why a viewer could not join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Nothing is live in the room.
    #[error("not live")]
    NotLive,
    /// The room has as many viewers as allowed.
    #[error("the stream has the most viewers allowed")]
    Full,
}

/// Held by a publisher; dropping it releases the slot's publisher seat.
#[derive(Debug)]
pub struct PublisherGuard {
    room: Arc<Room>,
    hub: Weak<Hub>,
    conn: u64,
}

/// Held by a viewer; dropping it counts the viewer out.
#[derive(Debug)]
pub struct ViewerGuard {
    room: Arc<Room>,
    hub: Weak<Hub>,
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    fn slot(&self, key: &RoomKey) -> Arc<Room> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Room {
                    key: key.clone(),
                    frames: watch::Sender::new(None),
                    viewers: watch::Sender::new(0),
                    publisher: Mutex::new(None),
                    next_seq: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// The slot for `key` if it exists (a publisher or viewer is present).
    pub fn get(&self, key: &RoomKey) -> Option<Arc<Room>> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Takes the publisher seat of a room (creating the slot) for connection
    /// `conn` of credential `owner`. A newer connection of the same owner
    /// takes the seat over (its older connection is being closed); another
    /// owner gets [`RoomBusy`].
    pub fn publish(
        self: &Arc<Hub>,
        key: &RoomKey,
        kind: SourceKind,
        owner: &str,
        conn: u64,
    ) -> Result<PublisherGuard, RoomBusy> {
        let room = self.slot(key);
        {
            let mut seat = room.publisher.lock().unwrap_or_else(|e| e.into_inner());
            if seat.as_ref().is_some_and(|s| s.owner != owner) {
                drop(seat);
                self.release(&room);
                return Err(RoomBusy);
            }
            if seat.is_none() {
                self.publishers_total.fetch_add(1, Ordering::Relaxed);
            }
            *seat = Some(Seat {
                kind,
                owner: owner.to_owned(),
                conn,
            });
        }
        Ok(PublisherGuard {
            room,
            hub: Arc::downgrade(self),
            conn,
        })
    }

    /// Viewers allowed per room from now on (0 = unlimited).
    pub fn set_max_viewers(&self, max: usize) {
        self.max_viewers.store(max, Ordering::Relaxed);
    }

    /// Joins an existing room as a viewer.
    pub fn watch(
        self: &Arc<Hub>,
        key: &RoomKey,
    ) -> Result<(ViewerGuard, watch::Receiver<Option<Frame>>), WatchError> {
        let room = self.get(key).ok_or(WatchError::NotLive)?;
        let max = self.max_viewers.load(Ordering::Relaxed);
        let mut full = false;
        room.viewers.send_if_modified(|n| {
            if max > 0 && *n >= max {
                full = true;
                return false;
            }
            *n += 1;
            true
        });
        if full {
            return Err(WatchError::Full);
        }
        self.viewers_total.fetch_add(1, Ordering::Relaxed);
        let rx = room.frames.subscribe();
        Ok((
            ViewerGuard {
                room,
                hub: Arc::downgrade(self),
            },
            rx,
        ))
    }

    /// Every room slot now.
    pub fn rooms(&self) -> Vec<Arc<Room>> {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Rooms of an app that have a live publisher.
    pub fn publishers_in_app(&self, app: &str) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.key.app == app && r.publisher().is_some())
            .count()
    }

    /// Rooms of an app whose live publisher is of `kind`.
    pub fn publishers_of_kind(&self, app: &str, kind: SourceKind) -> usize {
        self.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.key.app == app && r.publisher() == Some(kind))
            .count()
    }

    /// Rooms, viewers and publishers present now.
    pub fn counts(&self) -> (usize, usize, usize) {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner()).len();
        (
            rooms,
            self.viewers_total.load(Ordering::Relaxed),
            self.publishers_total.load(Ordering::Relaxed),
        )
    }

    fn release(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let idle = room.viewer_count() == 0 && room.publisher().is_none();
        if idle && rooms.get(&room.key).is_some_and(|r| Arc::ptr_eq(r, room)) {
            rooms.remove(&room.key);
        }
    }
}

impl PublisherGuard {
    /// The room being published to.
    pub fn room(&self) -> &Arc<Room> {
        &self.room
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        let vacated = {
            let mut seat = self
                .room
                .publisher
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            // A newer connection of the same owner may hold the seat now.
            let mine = seat.as_ref().is_some_and(|s| s.conn == self.conn);
            if mine {
                *seat = None;
            }
            mine
        };
        if let Some(hub) = self.hub.upgrade() {
            if vacated {
                hub.publishers_total.fetch_sub(1, Ordering::Relaxed);
            }
            hub.release(&self.room);
        }
    }
}

impl Drop for ViewerGuard {
    fn drop(&mut self) {
        self.room.viewers.send_modify(|n| *n = n.saturating_sub(1));
        if let Some(hub) = self.hub.upgrade() {
            hub.viewers_total.fetch_sub(1, Ordering::Relaxed);
            hub.release(&self.room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> RoomKey {
        RoomKey {
            app: "live".into(),
            room: "live-cam1".into(),
        }
    }

    #[test]
    fn slot_lives_while_publisher_or_viewer_is_present() {
        let hub = Hub::new();
        assert!(hub.watch(&key()).is_err());
        let p = hub
            .publish(&key(), SourceKind::WsMjpeg, "k1", 1)
            .expect("seat");
        let (v, rx) = hub.watch(&key()).expect("room exists");
        assert_eq!(hub.counts(), (1, 1, 1));
        drop(p);
        assert!(hub.get(&key()).is_some(), "viewer keeps the slot");
        drop(v);
        drop(rx);
        assert!(hub.get(&key()).is_none());
        assert_eq!(hub.counts(), (0, 0, 0));
    }

    #[test]
    fn one_seat_per_room_same_owner_takes_over() {
        let hub = Hub::new();
        let old = hub
            .publish(&key(), SourceKind::WsMjpeg, "k1", 1)
            .expect("seat");
        assert_eq!(
            hub.publish(&key(), SourceKind::WsMjpeg, "k2", 2).err(),
            Some(RoomBusy)
        );
        let new = hub
            .publish(&key(), SourceKind::WsMjpeg, "k1", 3)
            .expect("takeover");
        drop(old);
        assert_eq!(
            new.room().publisher(),
            Some(SourceKind::WsMjpeg),
            "old guard left the seat alone"
        );
        assert_eq!(hub.counts(), (1, 0, 1));
        drop(new);
        assert_eq!(hub.counts(), (0, 0, 0));
    }

    #[tokio::test]
    async fn slow_viewer_skips_to_newest_and_new_viewer_gets_latest() {
        let hub = Hub::new();
        let p = hub
            .publish(&key(), SourceKind::WsMjpeg, "k1", 1)
            .expect("seat");
        let (_v, mut rx) = hub.watch(&key()).expect("room");
        for i in 0..10u8 {
            p.room().publish(&[i], Instant::now());
        }
        rx.changed().await.expect("sender alive");
        let f = rx.borrow_and_update().clone().expect("frame");
        assert_eq!((&f.part.jpeg()[..], f.seq), (&[9u8][..], 9));
        let (_v2, rx2) = hub.watch(&key()).expect("room");
        assert_eq!(rx2.borrow().as_ref().map(|f| f.seq), Some(9));
        assert_eq!(p.room().viewer_count(), 2);
    }
}
