//! The generator's own memory figures: the peak is the kernel's high-water mark (no short spike missed).

use ssebench::server::ServeConfig;

use crate::util::{serve, serve_cfg, ssebench, temp_dir};

#[test]
fn the_memory_peak_is_the_kernels_high_water_mark() {
    let server = serve(ServeConfig { events: 5, ..serve_cfg() });
    let dir = temp_dir("memory-peak");
    let json_path = dir.join("out.json");
    let url = format!("http://{}/", server.addr);
    let output =
        ssebench().args(["run", &url, "-c", "4", "-n", "8", "-t", "1", "--json"]).arg(&json_path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let memory = &json["memory"];
    assert_eq!(memory["peak_source"], "vmhwm", "{memory}");
    assert!(memory["rss_peak_kib"].as_u64().unwrap() >= memory["rss_before_kib"].as_u64().unwrap(), "{memory}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("MB peak (kernel high-water mark)"), "{stdout}");
    std::fs::remove_dir_all(&dir).ok();
    server.stop();
}
