// The access review before anything reaches the agent, and the agent lookup on the node.
import { ExitCode } from '../../../src/contract.js';
import { checkExecAccess, execQuestion, permissionOf } from '../../../src/kube/access.js';
import { findAgent } from '../../../src/kube/agent.js';
import { failure, FakeAccessClient, FakeAgentClient, fakeAgentPod } from './fakes.js';

describe('checkExecAccess', () => {
  test('asks for create pods/exec on the named pod', async () => {
    const client = new FakeAccessClient({ allowed: true });
    await checkExecAccess({ namespace: 'demo', pod: 'web-0' }, client);
    expect(client.questions).toEqual([{ namespace: 'demo', verb: 'create', resource: 'pods', subresource: 'exec', name: 'web-0' }]);
    expect(permissionOf(execQuestion('demo', 'web-0'))).toBe('create pods/exec');
  });

  test('denied: names the pod and the missing permission', async () => {
    expect(await failure(checkExecAccess({ namespace: 'demo', pod: 'web-0' }, new FakeAccessClient({ allowed: false })))).toEqual({
      code: ExitCode.FORBIDDEN,
      message: 'you may not exec into pod demo/web-0: missing permission create pods/exec in namespace demo; ask your cluster admin for it',
    });
  });

  test("denied with the authorizer's reason", async () => {
    const f = await failure(
      checkExecAccess({ namespace: 'demo', pod: 'web-0' }, new FakeAccessClient({ allowed: false, reason: 'no RBAC policy matched' })),
    );
    expect(f.message).toBe(
      'you may not exec into pod demo/web-0: missing permission create pods/exec in namespace demo (no RBAC policy matched); ask your cluster admin for it',
    );
  });
});

describe('findAgent', () => {
  test('the ready agent pod on the node', async () => {
    const client = new FakeAgentClient({ n1: [fakeAgentPod('n1')] });
    expect(await findAgent('n1', 'nsdebug-system', client)).toEqual({
      namespace: 'nsdebug-system',
      pod: 'nsdebug-agent-n1',
      container: 'agent',
      node: 'n1',
    });
    expect(client.calls).toEqual(['list agents nsdebug-system on n1']);
  });

  test('none: run kubectl nsdebug install', async () => {
    expect(await failure(findAgent('worker-3', 'nsdebug-system', new FakeAgentClient()))).toEqual({
      code: ExitCode.AGENT_UNAVAILABLE,
      message:
        'no nsdebug agent on node worker-3 (looked in namespace nsdebug-system): run `kubectl nsdebug install`, or pass --agent-namespace if it runs elsewhere',
    });
  });

  test('not ready: see kubectl nsdebug status', async () => {
    const f = await failure(findAgent('n1', 'nsdebug-system', new FakeAgentClient({ n1: [fakeAgentPod('n1', false)] })));
    expect(f.code).toBe(ExitCode.AGENT_UNAVAILABLE);
    expect(f.message).toMatch(
      /^the nsdebug agent on node n1 \(pod nsdebug-system\/nsdebug-agent-n1\) is not ready: .*; see `kubectl nsdebug status`$/,
    );
  });

  test('a terminating old pod next to a ready new one: the new one', async () => {
    const old = fakeAgentPod('n1', true, 'old');
    old.metadata = { ...old.metadata, deletionTimestamp: '2026-01-02T00:00:00Z' };
    const fresh = fakeAgentPod('n1', true, 'fresh');
    expect((await findAgent('n1', 'nsdebug-system', new FakeAgentClient({ n1: [old, fresh] }))).pod).toBe('fresh');
  });
});
