// Podman's Docker-compatible API for the DOCKER runner's tests: `podman system service` on a unix socket in a
// temp dir (runc, vfs storage, no network; config through CONTAINERS_CONF / CONTAINERS_STORAGE_CONF, nothing
// under /etc is touched), with a local busybox image built from the static /bin/busybox (no registry needed).
import { execFile, spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The image every Docker test uses (busybox with sh, echo, cat, sleep, env, true, false, id, pwd...). */
export const TEST_IMAGE = "localhost/busybox:test";
const APPLETS = ["sh", "echo", "cat", "sleep", "env", "true", "false", "id", "pwd", "ls"];
const BUSYBOX = ["/bin/busybox", "/usr/bin/busybox"];

export interface PodmanService {
  /** `unix://DIR/podman.sock`, for DOCKER_HOST. */
  dockerHost: string;
  image: string;
  destroy(): Promise<void>;
}

function writeConfig(dir: string): NodeJS.ProcessEnv {
  const containersConf = path.join(dir, "containers.conf");
  const storageConf = path.join(dir, "storage.conf");
  // tmp_dir / network_config_dir / events log in DIR too: several runs on one machine must not share /run/libpod.
  fs.writeFileSync(
    containersConf,
    `[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "${dir}/events.log"
tmp_dir = "${dir}/tmp"
[network]
network_config_dir = "${dir}/net"
`,
  );
  fs.writeFileSync(storageConf, `[storage]\ndriver = "vfs"\nrunroot = "${dir}/run"\ngraphroot = "${dir}/storage"\n`);
  return { ...process.env, CONTAINERS_CONF: containersConf, CONTAINERS_STORAGE_CONF: storageConf };
}

/** A rootfs tar: static busybox + applet symlinks, /etc/passwd with root and `app` (1000:1000), /tmp. */
function buildRootfs(dir: string): string {
  const busybox = BUSYBOX.find((p) => fs.existsSync(p));
  if (!busybox) throw new Error("busybox not found (apt-get install busybox-static; scripts/test.sh does)");
  const root = path.join(dir, "rootfs");
  for (const d of ["bin", "etc", "tmp", "home/app"]) fs.mkdirSync(path.join(root, d), { recursive: true });
  fs.copyFileSync(busybox, path.join(root, "bin/busybox"));
  fs.chmodSync(path.join(root, "bin/busybox"), 0o755);
  for (const a of APPLETS) fs.symlinkSync("busybox", path.join(root, "bin", a));
  fs.writeFileSync(path.join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n");
  fs.writeFileSync(path.join(root, "etc/group"), "root:x:0:\napp:x:1000:\n");
  fs.chmodSync(path.join(root, "tmp"), 0o1777);
  return root;
}

/** Processes whose command line mentions `dir` (conmon and container processes of this service's storage). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const name of fs.readdirSync("/proc")) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(dir)) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function waitForSocket(sock: string, service: ChildProcess, logs: () => string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fs.existsSync(sock)) {
    if (service.exitCode !== null || service.signalCode !== null) throw new Error(`podman system service exited:\n${logs()}`);
    if (Date.now() > deadline) throw new Error(`podman socket not ready within ${timeoutMs} ms:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startPodman(): Promise<PodmanService> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "jwp-podman-"));
  const env = writeConfig(dir);
  let service: ChildProcess | undefined;
  const destroy = async () => {
    // Containers first (kills their processes), then the service, then any conmon it left behind.
    await run("podman", ["rm", "--all", "--force", "--time", "0"], { env }).catch(() => {});
    if (service && service.exitCode === null && service.signalCode === null) {
      const exited = new Promise((r) => service!.once("exit", r));
      service.kill("SIGTERM");
      const t = setTimeout(() => service!.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    }
    for (const pid of processesUsing(dir)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    const root = buildRootfs(dir);
    const tar = path.join(dir, "rootfs.tar");
    await run("tar", ["-C", root, "-cf", tar, "."]);
    await run("podman", ["import", "--quiet", tar, TEST_IMAGE], { env });
    const sock = path.join(dir, "podman.sock");
    let out = "";
    service = spawn("podman", ["system", "service", "--time=0", `unix://${sock}`], { env, stdio: ["ignore", "pipe", "pipe"] });
    service.stdout!.on("data", (b) => (out += b));
    service.stderr!.on("data", (b) => (out += b));
    service.on("error", (e) => (out += `spawn error: ${e.message}`));
    await waitForSocket(sock, service, () => out);
    return { dockerHost: `unix://${sock}`, image: TEST_IMAGE, destroy };
  } catch (e) {
    await destroy();
    throw e;
  }
}
