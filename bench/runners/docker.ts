// DOCKER: a `true` container from a local busybox image on a Podman service started for the bench (Docker
// Engine API on a unix socket; test/helpers/podman.ts). Without use_static each job creates, starts, waits for
// and removes a container; with use_static each job is an exec in a pooled long-lived container.
import { startPodman } from "../../test/helpers/podman.js";
import type { RunnerBenchCase } from "./case.js";

export const cases: RunnerBenchCase[] = [
  {
    name: "DOCKER `true` container",
    runner: "DOCKER",
    async prepare() {
      const podman = await startPodman();
      return {
        settings: { from_image: podman.image },
        args: { cmd: ["true"], treat_nonzero_as_error: true },
        env: { DOCKER_HOST: podman.dockerHost },
        cleanup: podman.destroy,
      };
    },
  },
];
