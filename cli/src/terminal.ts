import ansiRegex from "ansi-regex";

const ESCAPES = ansiRegex();
/** Select Graphic Rendition (colours, bold): the one kind of sequence that only changes how text looks. */
const SGR = /^(?:\x1b\[|\x9b)[0-9;:]*m$/;
/** C0 and C1 controls but tab and newline: a carriage return or backspace overwrites what was printed. */
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g;

/**
 * App and build output made safe for the operator's terminal: colours stay; every other escape
 * sequence (clearing the screen, a window title, OSC 52 writing the clipboard, moving the cursor
 * over earlier lines) and every other control character goes. That output is the app's, and the
 * terminal would obey it.
 */
export function terminalSafe(text: string): string {
  let safe = "";
  let from = 0;
  for (const match of text.matchAll(ESCAPES)) {
    safe += text.slice(from, match.index).replace(CONTROLS, "");
    if (SGR.test(match[0])) safe += match[0];
    from = match.index + match[0].length;
  }
  return safe + text.slice(from).replace(CONTROLS, "");
}
