//! What a function builds from its secrets, built on first use instead of at init, and kept
//! for a while: init makes no network call (a cold start stays near a bare runtime's), and a
//! rotated secret reaches a warm function within [`SECRETS_TTL`].
//!
//! The secrets are read again once they are [`SECRETS_TTL`] old; what was built from them is
//! rebuilt only when they changed, so a warm function keeps its clients (and Zigned's OAuth token)
//! across reads. A read or build that fails before anything was built is the caller's error (the
//! request or batch fails, and the next one tries again); one that fails later keeps what was
//! built and tries again after [`RETRY_AFTER_FAILURE`].

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::Error;

/// How long secrets read from SSM are used before they are read again.
pub const SECRETS_TTL: Duration = Duration::from_secs(300);
/// How long a function that could not refresh its secrets waits before it tries again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// What a function reads (its secrets) and what it builds from them.
#[async_trait]
pub trait Source: Send + Sync {
    /// What is read: compared with the last read to tell whether anything changed.
    type Material: PartialEq + Send + Sync;
    /// What is built: cheap to clone (an `Arc`, a `Router`).
    type Built: Clone + Send + Sync;

    async fn read(&self) -> Result<Self::Material, Error>;

    fn build(&self, material: &Self::Material) -> Result<Self::Built, Error>;
}

struct Kept<M, T> {
    material: M,
    built: T,
    /// When the material is read again.
    next_read: Instant,
}

/// A [`Source`]'s product, built on the first [`get`](Self::get) and refreshed as said above.
pub struct OnFirstUse<S: Source> {
    source: S,
    ttl: Duration,
    kept: Mutex<Option<Kept<S::Material, S::Built>>>,
}

impl<S: Source> OnFirstUse<S> {
    pub fn new(source: S) -> Self {
        Self::with_ttl(source, SECRETS_TTL)
    }

    pub fn with_ttl(source: S, ttl: Duration) -> Self {
        OnFirstUse {
            source,
            ttl,
            kept: Mutex::new(None),
        }
    }

    /// The built product: read and built now if nothing was yet, or if the secrets are due to
    /// be read again.
    pub async fn get(&self) -> Result<S::Built, Error> {
        // One reader at a time: concurrent first requests make one read, not one each.
        let mut kept = self.kept.lock().await;
        let now = Instant::now();
        let Some(current) = kept.as_mut() else {
            let material = self.source.read().await?;
            let built = self.source.build(&material)?;
            *kept = Some(Kept {
                material,
                built: built.clone(),
                next_read: now + self.ttl,
            });
            return Ok(built);
        };
        if now < current.next_read {
            return Ok(current.built.clone());
        }
        let refreshed = match self.source.read().await {
            Ok(material) if material == current.material => Ok(None),
            Ok(material) => self
                .source
                .build(&material)
                .map(|built| Some((material, built))),
            Err(error) => Err(error),
        };
        match refreshed {
            Ok(None) => current.next_read = now + self.ttl,
            Ok(Some((material, built))) => {
                tracing::info!("secrets changed: rebuilt with the new ones");
                *current = Kept {
                    material,
                    built,
                    next_read: now + self.ttl,
                };
            }
            Err(error) => {
                tracing::error!(%error, retry_in_secs = RETRY_AFTER_FAILURE.as_secs(), "refreshing the secrets failed: still using the ones read before");
                current.next_read = now + RETRY_AFTER_FAILURE;
            }
        }
        Ok(current.built.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex as StdMutex};

    use super::*;

    /// Reads the value it is told to, or fails; builds "built(<value>)" and counts both.
    struct Scripted {
        value: StdMutex<Result<String, String>>,
        reads: AtomicUsize,
        builds: AtomicUsize,
    }

    impl Scripted {
        fn set(&self, value: Result<&str, &str>) {
            *self.value.lock().unwrap() = value.map(str::to_owned).map_err(str::to_owned);
        }
        fn counts(&self) -> (usize, usize) {
            (
                self.reads.load(Ordering::SeqCst),
                self.builds.load(Ordering::SeqCst),
            )
        }
    }

    #[async_trait]
    impl Source for Arc<Scripted> {
        type Material = String;
        type Built = String;

        async fn read(&self) -> Result<String, Error> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.value.lock().unwrap().clone().map_err(Error::from)
        }

        fn build(&self, material: &String) -> Result<String, Error> {
            self.builds.fetch_add(1, Ordering::SeqCst);
            match material.as_str() {
                "unbuildable" => Err("cannot build with that".into()),
                value => Ok(format!("built({value})")),
            }
        }
    }

    fn scripted(value: Result<&str, &str>) -> (Arc<Scripted>, OnFirstUse<Arc<Scripted>>) {
        let source = Arc::new(Scripted {
            value: StdMutex::new(Err(String::new())),
            reads: AtomicUsize::new(0),
            builds: AtomicUsize::new(0),
        });
        source.set(value);
        let lazy = OnFirstUse::with_ttl(source.clone(), Duration::from_secs(60));
        (source, lazy)
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_read_before_first_use_then_once_per_ttl() {
        let (source, lazy) = scripted(Ok("a"));
        assert_eq!(source.counts(), (0, 0), "building it reads nothing");
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        assert_eq!(source.counts(), (1, 1), "within the TTL: no second read");

        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        assert_eq!(
            source.counts(),
            (2, 1),
            "read again after the TTL, not rebuilt: nothing changed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_secret_is_rebuilt_once_read_again() {
        let (source, lazy) = scripted(Ok("a"));
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        source.set(Ok("b"));
        assert_eq!(lazy.get().await.unwrap(), "built(a)", "not read yet");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert_eq!(lazy.get().await.unwrap(), "built(b)");
        assert_eq!(source.counts(), (2, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_failure_is_the_callers_and_the_next_call_tries_again() {
        let (source, lazy) = scripted(Err("SSM is unreachable"));
        let error = lazy.get().await.unwrap_err().to_string();
        assert_eq!(error, "SSM is unreachable");
        source.set(Ok("unbuildable"));
        let error = lazy.get().await.unwrap_err().to_string();
        assert_eq!(error, "cannot build with that");
        source.set(Ok("a"));
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        assert_eq!(source.counts(), (3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_keeps_what_was_built_and_retries_sooner() {
        let (source, lazy) = scripted(Ok("a"));
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        tokio::time::advance(Duration::from_secs(61)).await;
        source.set(Err("throttled"));
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        source.set(Ok("unbuildable"));
        tokio::time::advance(RETRY_AFTER_FAILURE - Duration::from_secs(1)).await;
        assert_eq!(lazy.get().await.unwrap(), "built(a)");
        assert_eq!(source.counts(), (2, 1), "no read before the retry is due");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(lazy.get().await.unwrap(), "built(a)", "unbuildable: kept");
        source.set(Ok("b"));
        tokio::time::advance(RETRY_AFTER_FAILURE).await;
        assert_eq!(lazy.get().await.unwrap(), "built(b)");
        assert_eq!(source.counts(), (4, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_first_uses_read_once() {
        let (source, lazy) = scripted(Ok("a"));
        let lazy = Arc::new(lazy);
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let lazy = lazy.clone();
                tokio::spawn(async move { lazy.get().await.unwrap() })
            })
            .collect();
        for call in calls {
            assert_eq!(call.await.unwrap(), "built(a)");
        }
        assert_eq!(source.counts(), (1, 1));
    }
}
