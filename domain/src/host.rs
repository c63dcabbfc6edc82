//! The machine this server runs on, as `/system/status` shows it when jobs run here (embedded
//! mode): capacity and use read from Linux's `/proc`, in upstream's units (CPU in millicores).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use model::system::{NodeCondition, NodeResource, NodeStatus};

/// Below this share of memory available, the node reports `MemoryPressure` (the kubelet's
/// default eviction threshold is of the same order).
const MEMORY_PRESSURE_BELOW: f64 = 0.05;

/// CPU use is the busy share of the time between two readings of `/proc/stat`; a reading this
/// recent is too short a window, so the call waits this long for a second one.
const SHORTEST_WINDOW: Duration = Duration::from_millis(200);

/// The previous `/proc/stat` reading: (when, busy ticks, all ticks).
static LAST_CPU_READING: Mutex<Option<(Instant, u64, u64)>> = Mutex::new(None);

/// This machine as a node. Requests are left at zero: what running jobs asked for is the
/// platform's to add (`domain::status`).
pub async fn node() -> NodeStatus {
    let capacity_millis = std::thread::available_parallelism().map_or(1, |n| n.get()) as i64 * 1000;
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| memory_from(&text));
    let (memory_total, memory_available) = memory.unwrap_or((0, 0));
    let pressure =
        memory_total > 0 && (memory_available as f64) < MEMORY_PRESSURE_BELOW * memory_total as f64;
    NodeStatus {
        name: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_string())
            .unwrap_or_else(|_| "localhost".into()),
        cpu: NodeResource {
            capacity_cores: capacity_millis,
            usage_cores: (cpu_busy_share().await * capacity_millis as f64).round() as i64,
            ..Default::default()
        },
        memory: NodeResource {
            capacity_bytes: memory_total,
            usage_bytes: memory_total - memory_available,
            ..Default::default()
        },
        gpu: gpus(),
        is_interlink: false,
        status: if memory.is_some() { "Ready" } else { "Unknown" }.into(),
        conditions: vec![
            NodeCondition {
                kind: "Ready".into(),
                status: memory.is_some(),
            },
            NodeCondition {
                kind: "MemoryPressure".into(),
                status: pressure,
            },
        ],
    }
}

/// The share of CPU time spent busy since the last reading (at least [`SHORTEST_WINDOW`]).
async fn cpu_busy_share() -> f64 {
    let Some(first) = read_cpu() else {
        return 0.0;
    };
    let previous = LAST_CPU_READING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .filter(|(at, _, _)| at.elapsed() >= SHORTEST_WINDOW);
    let (before, now) = match previous {
        Some((_, busy, all)) => ((busy, all), first),
        None => {
            tokio::time::sleep(SHORTEST_WINDOW).await;
            (first, read_cpu().unwrap_or(first))
        }
    };
    *LAST_CPU_READING.lock().unwrap_or_else(|e| e.into_inner()) =
        Some((Instant::now(), now.0, now.1));
    busy_share(before, now)
}

fn busy_share((busy_before, all_before): (u64, u64), (busy, all): (u64, u64)) -> f64 {
    let all = all.saturating_sub(all_before);
    if all == 0 {
        return 0.0;
    }
    (busy.saturating_sub(busy_before) as f64 / all as f64).clamp(0.0, 1.0)
}

fn read_cpu() -> Option<(u64, u64)> {
    cpu_from(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// (busy, all) ticks from `/proc/stat`'s first line: `cpu user nice system idle iowait irq
/// softirq steal …`; idle and iowait are not busy.
fn cpu_from(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(|n| n.parse().ok())
        .collect::<Option<_>>()?;
    let all: u64 = ticks.iter().sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    Some((all - idle, all))
}

/// (total, available) bytes from `/proc/meminfo`.
fn memory_from(meminfo: &str) -> Option<(i64, i64)> {
    let field = |name: &str| {
        meminfo.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: i64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kib * 1024)
        })
    };
    Some((field("MemTotal")?, field("MemAvailable")?))
}

/// NVIDIA devices (`/dev/nvidia0`, `/dev/nvidia1`, …).
fn gpus() -> i64 {
    std::fs::read_dir("/dev").map_or(0, |entries| {
        entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_str()
                    .and_then(|name| name.strip_prefix("nvidia"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count() as i64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_count_idle_and_iowait_as_not_busy() {
        let stat = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\n";
        assert_eq!(cpu_from(stat), Some((160, 1000)));
        assert_eq!(busy_share((160, 1000), (460, 2000)), 0.3);
        assert_eq!(busy_share((160, 1000), (160, 1000)), 0.0);
        assert_eq!(cpu_from("intr 1 2 3"), None);
    }

    #[test]
    fn memory_is_total_and_available() {
        let meminfo = "MemTotal:       16384 kB\nMemFree:  1000 kB\nMemAvailable:    4096 kB\n";
        assert_eq!(memory_from(meminfo), Some((16384 * 1024, 4096 * 1024)));
        assert_eq!(memory_from("MemTotal: 10 kB\n"), None);
    }

    #[tokio::test]
    async fn this_machine_is_a_ready_node_with_its_capacity() {
        let node = node().await;
        assert_eq!(node.status, "Ready");
        assert!(node.cpu.capacity_cores >= 1000);
        assert!((0..=node.cpu.capacity_cores).contains(&node.cpu.usage_cores));
        assert!(node.memory.capacity_bytes > node.memory.usage_bytes);
        assert!(node.memory.usage_bytes > 0);
    }
}
