"""Fails when the module files of a crate import each other in a circle.

usage: python3 .ci/import_cycles.py REPO_ROOT

Counts `crate::…` and `super::…` paths outside comments and test modules, file by file, and
looks for a cycle in the graph of modules they name (a module's own submodules and ancestors
excepted).
"""
import os,re,sys
root=sys.argv[1]
def modpath(crate_src, f):
    rel=os.path.relpath(f,crate_src)[:-3]
    parts=rel.split(os.sep)
    if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
    return parts
failed = False
for crate in ["kernels","fileio","engine","corpora","cli"]:
    src=os.path.join(root,crate,'src')
    files=[os.path.join(d,f) for d,_,fs in os.walk(src) for f in fs if f.endswith('.rs')]
    mods={tuple(modpath(src,f)):f for f in files}
    edges={}
    for m,f in mods.items():
        text=open(f).read()
        text=text.split('#[cfg(test)]')[0]
        text='\n'.join(l for l in text.split('\n') if not l.strip().startswith('//'))
        deps=set()
        for u in re.findall(r'\b(crate|super)::((?:\w+::)*\w+|\{[^}]*\})',text):
            base=list(m) if u[0]=='super' else []
            if u[0]=='super':
                is_dir_mod=os.path.basename(f) in ('mod.rs',)
                base=list(m)[:-1]
            path=base+u[1].split('::')
            # longest existing module prefix
            for k in range(len(path),0,-1):
                if tuple(path[:k]) in mods:
                    t=tuple(path[:k])
                    if t!=m and not (len(t)<len(m) and m[:len(t)]==t): deps.add(t)
                    break
        edges[m]=deps
    # find cycles via DFS
    color={};stack=[];found=set()
    def dfs(u):
        color[u]=1;stack.append(u)
        for v in edges.get(u,()):
            if color.get(v)==1:
                cyc=stack[stack.index(v):]+[v]; found.add(' -> '.join('::'.join(x) for x in cyc))
            elif not color.get(v): dfs(v)
        stack.pop();color[u]=2
    for u in edges:
        if not color.get(u): dfs(u)
    print(crate, len(found), 'cycles'); [print('  ',c) for c in sorted(found)]
    failed = failed or bool(found)
sys.exit(1 if failed else 0)
