import type { Command } from "commander";
import { CliError } from "../client";

const SHELLS = ["bash", "zsh", "fish"] as const;

const flags = (command: Command) => [...command.options.filter((o) => !o.hidden).flatMap((o) => [o.long, o.short]), "--help"].filter((f): f is string => Boolean(f));
const visible = (command: Command) => command.commands.filter((c) => !(c as unknown as { _hidden?: boolean })._hidden);
/** Shell words are generated from the program's own names: nothing in them needs quoting but `'`. */
const words = (list: string[]) => list.join(" ").replace(/'/g, "");

/**
 * A bash completion function built from the program's commands: the first word completes to a
 * command, the second to its subcommands, and any later word to the options of what was typed.
 */
function bashScript(program: Command): string {
  const global = flags(program);
  const cases: string[] = [];
  for (const command of visible(program)) {
    const subs = visible(command);
    for (const sub of subs) cases.push(`    '${command.name()} ${sub.name()}') options='${words([...flags(sub), ...global])}' ;;`);
    const own = subs.length ? [...subs.map((s) => s.name()), ...flags(command)] : [...flags(command), ...global];
    cases.push(`    '${command.name()} '*) options='${words(own)}' ;;`);
  }
  return `# slipway completion for bash: source <(slipway completion bash)
_slipway() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" command="" sub="" options="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "\${COMP_WORDS[i]}" in
      -*) ;;
      *) if [[ -z $command ]]; then command="\${COMP_WORDS[i]}"; elif [[ -z $sub ]]; then sub="\${COMP_WORDS[i]}"; fi ;;
    esac
  done
  case "$command $sub" in
${cases.join("\n")}
    *) options='${words([...visible(program).map((c) => c.name()), ...global])}' ;;
  esac
  COMPREPLY=($(compgen -W "$options" -- "$cur"))
  # deploy takes a directory.
  if [[ $command == deploy && $cur != -* ]]; then COMPREPLY+=($(compgen -d -- "$cur")); fi
}
complete -F _slipway slipway
`;
}

/** zsh runs the bash function through its bash-completion emulation: one script to keep right. */
function zshScript(program: Command): string {
  return `# slipway completion for zsh: source <(slipway completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashScript(program).split("\n").slice(1).join("\n")}`;
}

function fishScript(program: Command): string {
  const describe = (text: string) => `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  const option = (o: Command["options"][number]) =>
    `${o.long ? ` -l ${o.long.replace(/^--/, "")}` : ""}${o.short ? ` -s ${o.short.replace(/^-/, "")}` : ""} -d ${describe(o.description)}`;
  const lines = ["# slipway completion for fish: slipway completion fish | source", "complete -c slipway -f"];
  for (const o of program.options.filter((o) => !o.hidden)) lines.push(`complete -c slipway${option(o)}`);
  for (const command of visible(program)) {
    lines.push(`complete -c slipway -n __fish_use_subcommand -a ${command.name()} -d ${describe(command.description())}`);
    for (const o of command.options.filter((o) => !o.hidden)) lines.push(`complete -c slipway -n '__fish_seen_subcommand_from ${command.name()}'${option(o)}`);
    for (const sub of visible(command)) {
      lines.push(`complete -c slipway -n '__fish_seen_subcommand_from ${command.name()}' -a ${sub.name()} -d ${describe(sub.description())}`);
      for (const o of sub.options.filter((o) => !o.hidden)) lines.push(`complete -c slipway -n '__fish_seen_subcommand_from ${sub.name()}'${option(o)}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** `completion bash|zsh|fish`: prints a script that completes slipway's commands and options. */
export function registerCompletion(program: Command): void {
  program
    .command("completion <shell>")
    .description(`print a completion script (${SHELLS.join(", ")}); bash: source <(slipway completion bash)`)
    .action((shell: string) => {
      const scripts = { bash: bashScript, zsh: zshScript, fish: fishScript } as const;
      if (!(SHELLS as readonly string[]).includes(shell)) throw new CliError(`no completion for "${shell}": choose ${SHELLS.join(", ")}`);
      process.stdout.write(scripts[shell as (typeof SHELLS)[number]](program));
    });
}
