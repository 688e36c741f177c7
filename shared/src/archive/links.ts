import path from "node:path";

/** Linux's MAXSYMLINKS: a path needing more links than this fails with ELOOP, so no legitimate tree needs more. */
const MAX_HOPS = 40;
/**
 * Components one resolution may walk, link expansions included. Real links need a few dozen;
 * the bound keeps a crafted archive of many long chained links from costing quadratic time.
 */
const MAX_STEPS = 4096;

/** Where a path really leads: a member path ("" is the root), or why it leads nowhere inside. */
export type Resolution = { path: string } | { outside: string } | { loop: string };

interface Node {
  children?: Map<string, Node>;
  /** Set when this name is a symbolic link: its target, split into components. */
  target?: { text: string; parts: string[] };
}

const split = (p: string) => p.split("/").filter((part) => part !== "" && part !== ".");

/**
 * The symbolic links an archive has created so far, as a tree of member names, so that a link
 * target or a member name can be resolved the way the kernel will once the links exist on disk:
 * through every link, `..` after a link going up from where the link leads. Names that are not
 * links are taken for directories, which only ever allows more resolutions than the kernel.
 */
export class LinkTree {
  private readonly root: Node = {};
  private readonly all = new Map<string, string>();

  /** Records `name` (a normalised member path) as a link to `target`, replacing whatever it was. */
  set(name: string, target: string): void {
    let node = this.root;
    for (const part of split(name)) {
      node.children ??= new Map();
      let child = node.children.get(part);
      if (!child) node.children.set(part, (child = {}));
      node = child;
    }
    node.target = { text: target, parts: target.split("/") };
    this.all.set(name, target);
  }

  /** The target of the link `name`, when it is one. */
  targetOf(name: string): string | undefined {
    return this.all.get(name);
  }

  /** Every link recorded, as [member path, target]. */
  links(): IterableIterator<[string, string]> {
    return this.all.entries();
  }

  /** The first proper ancestor of `name` (a normalised member path) that is a link, if any. */
  linkAbove(name: string): string | undefined {
    const parts = split(name);
    let node: Node | undefined = this.root;
    for (let i = 0; i < parts.length - 1 && node; i++) {
      node = node.children?.get(parts[i]!);
      if (node?.target) return parts.slice(0, i + 1).join("/");
    }
    return undefined;
  }

  /**
   * Resolves `target` as the kernel would from member directory `fromDir` ("" or "." for the
   * root), following every link, the last component's too.
   */
  resolve(fromDir: string, target: string): Resolution {
    if (path.posix.isAbsolute(target)) return { outside: target };
    // The real directories walked so far, as names and nodes; the root is the bottom of both.
    const names: string[] = [];
    const nodes: (Node | undefined)[] = [this.root];
    const pending = [...split(target).reverse(), ...split(fromDir).reverse()];
    let hops = 0;
    let steps = 0;
    while (pending.length > 0) {
      if (++steps > MAX_STEPS) return { loop: target };
      const part = pending.pop()!;
      if (part === "" || part === ".") continue;
      if (part === "..") {
        if (names.length === 0) return { outside: target };
        names.pop();
        nodes.pop();
        continue;
      }
      const node = nodes[nodes.length - 1]?.children?.get(part);
      if (node?.target) {
        if (++hops > MAX_HOPS) return { loop: target };
        if (path.posix.isAbsolute(node.target.text)) return { outside: `${[...names, part].join("/")} -> ${node.target.text}` };
        // The link's target replaces its name, resolved from the directory holding the link.
        for (let i = node.target.parts.length - 1; i >= 0; i--) pending.push(node.target.parts[i]!);
        continue;
      }
      names.push(part);
      nodes.push(node);
    }
    return { path: names.join("/") };
  }
}
