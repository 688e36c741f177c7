/**
 * bench/frameworks: cold and warm build times of a Django, a FastAPI, an Express and a Next.js
 * app, through the real API and a sandboxed build worker, in one run. Cold = first build of the
 * app (fresh venv / node_modules from the package indexes); warm = POST /rebuild with unchanged
 * dependencies (the dependency cache). Writes bench/results/frameworks.json.
 *
 *   npm run bench:frameworks        (BENCH_APPS=django,fastapi,express,nextjs)
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { packDirectory } from "@slipway/shared";
import { startBenchStack } from "./stack";
import { benchDir, machine, runBench, timeBuild, writeResult } from "./lib";

type Files = Record<string, string>;

const APPS: Record<string, { files: Files; lockfile?: boolean }> = {
  django: {
    files: {
      "requirements.txt": "Django==5.1.*\n",
      "manage.py": "import os, sys\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nfrom django.core.management import execute_from_command_line\nexecute_from_command_line(sys.argv)\n",
      "mysite/__init__.py": "",
      "mysite/settings.py": "from pathlib import Path\nBASE_DIR = Path(__file__).resolve().parent.parent\nSECRET_KEY = 'bench'\nDEBUG = False\nALLOWED_HOSTS = ['*']\nROOT_URLCONF = 'mysite.urls'\nINSTALLED_APPS = ['django.contrib.staticfiles']\nSTATIC_URL = '/static/'\nSTATIC_ROOT = BASE_DIR / 'staticfiles'\nWSGI_APPLICATION = 'mysite.wsgi.application'\n",
      "mysite/urls.py": "from django.http import HttpResponse\nfrom django.urls import path\nurlpatterns = [path('', lambda r: HttpResponse('ok'))]\n",
      "mysite/wsgi.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\nfrom django.core.wsgi import get_wsgi_application\napplication = get_wsgi_application()\n",
    },
  },
  fastapi: {
    files: {
      "requirements.txt": "fastapi==0.115.*\nuvicorn==0.32.*\n",
      "main.py": "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/')\ndef index():\n    return {'message': 'ok'}\n",
    },
  },
  express: {
    lockfile: true,
    files: {
      "package.json": JSON.stringify({ name: "bench-express", version: "1.0.0", dependencies: { express: "^4.21.0" }, scripts: { start: "node app.js" } }),
      "app.js": "const app = require('express')(); app.get('/', (q, s) => s.send('ok')); app.listen(process.env.PORT);\n",
    },
  },
  nextjs: {
    lockfile: true,
    files: {
      "package.json": JSON.stringify({
        name: "bench-next",
        version: "1.0.0",
        private: true,
        scripts: { build: "next build", start: "next start -p $PORT" },
        dependencies: { next: "14.2.*", react: "18.3.*", "react-dom": "18.3.*" },
      }),
      "pages/index.js": "export default function Home() { return <h1>ok</h1>; }\n",
    },
  },
};

async function main() {
  const work = await benchDir("frameworks");
  const stack = await startBenchStack(work);
  const names = (process.env.BENCH_APPS ?? Object.keys(APPS).join(",")).split(",");
  const results: Record<string, { coldSeconds: number; warmSeconds: number }> = {};
  try {
    for (const name of names) {
      const app = APPS[name];
      if (!app) throw new Error(`no bench app ${name} (have ${Object.keys(APPS).join(", ")})`);
      const src = path.join(work, name);
      for (const [file, content] of Object.entries(app.files)) {
        await mkdir(path.dirname(path.join(src, file)), { recursive: true });
        await writeFile(path.join(src, file), content);
      }
      if (app.lockfile) execFileSync("npm", ["install", "--package-lock-only", "--silent"], { cwd: src });
      const body = await readFile((await packDirectory(src, path.join(work, `${name}.tar.gz`))).file);
      const appName = `bench-${name}`;
      const cold = await timeBuild(stack.base, () => fetch(`${stack.base}/v1/apps/${appName}/builds`, { method: "POST", headers: { "Content-Type": "application/gzip" }, body }));
      const warm = await timeBuild(stack.base, () => fetch(`${stack.base}/v1/apps/${appName}/rebuild`, { method: "POST" }));
      results[name] = { coldSeconds: cold, warmSeconds: warm };
      console.log(`${name}: cold ${cold.toFixed(2)} s, warm ${warm.toFixed(2)} s`);
    }
    await writeResult("frameworks", {
      benchmark: "frameworks",
      date: new Date().toISOString(),
      machine: machine(),
      storage: stack.s3.kind,
      sandbox: stack.env.SANDBOX ?? "on",
      note: "wall time from the upload (cold) or POST /rebuild (warm) to succeeded; each build has a fresh HOME, so cold builds download everything; warm builds restore the dependency layer and still run the framework's own build step (collectstatic, next build).",
      apps: results,
    });
  } finally {
    await stack.close();
  }
}

runBench("frameworks", main);
