// Runs a command for a test: its output on success, an error with the output's tail otherwise.

import { spawn } from 'node:child_process';

/** Runs `cmd` to completion; resolves with its output, rejects with it on a non-zero exit or after `ms`. */
export function exec(cmd: string, args: string[], ms: number, cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}:\n${out.slice(-4000)}`));
    });
  });
}
