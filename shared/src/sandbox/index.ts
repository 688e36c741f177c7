export { SLIRP_DNS, writeSandboxResolvConf } from "./network";
export { spawnSandboxed, type SandboxCommand, type SandboxExit, type SandboxMode, type SandboxSpec, type SandboxedProcess } from "./spawn";
export { hostToolchains, sandboxEnvironment, sandboxPath, SYSTEM_PATH } from "./toolchains";
export { checkSandboxSupport, SANDBOX_UID_SPAN, sandboxUid, sandboxUnavailable, SandboxUnavailableError } from "./support";
export { compareVersions, findPythons, probePython, PYTHON_COMMAND_NAMES, type FoundPythons, type PythonInterpreter } from "./pythons";
export { runOnHost } from "./process-io";
export { overlayUsable } from "./support";
export { reapSandboxLeftovers } from "./leftovers";
export { egressRules, indexExceptions, type EgressException } from "./egress";
