//! Latencies of recent calls, behind the landing page's "median latency" figure.

/// Latencies of the last calls a real provider answered (whole answer for unary calls, first
/// token for streams), behind the landing page's "median latency" figure. The offline mock is
/// left out: its speed says nothing about the platform.
#[derive(Default)]
pub struct RecentLatencies {
    window: std::sync::Mutex<std::collections::VecDeque<u32>>,
}

impl RecentLatencies {
    const WINDOW: usize = 512;

    pub fn record(&self, provider: &str, latency: std::time::Duration) {
        if provider == "mock" {
            return;
        }
        let ms = u32::try_from(latency.as_millis()).unwrap_or(u32::MAX);
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() == Self::WINDOW {
            w.pop_front();
        }
        w.push_back(ms);
    }

    /// Median in milliseconds and the number of calls it is taken over.
    pub fn median(&self) -> Option<(f64, u32)> {
        let mut v: Vec<u32> = self
            .window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect();
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let n = v.len();
        let median = if n % 2 == 1 {
            f64::from(v[n / 2])
        } else {
            (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
        };
        Some((median, u32::try_from(n).unwrap_or(u32::MAX)))
    }
}
