<?php

declare(strict_types=1);

namespace Defer\Tests;

use Defer\Exception\ConnectionException;
use Defer\Exception\DeferException;
use Defer\Exception\TimeoutException;
use Defer\TaskState;
use Defer\Tests\Support\ClientTestCase;
use Defer\Tests\Support\FakeHttpServer;
use Defer\Tests\Support\Process;
use Defer\Tests\Support\Servers;

/**
 * The HTTP side of the client: one connection reused, a closed one replaced,
 * a request never sent twice when that could do something twice, and no
 * call outliving its timeout.
 */
final class ConnectionTest extends ClientTestCase
{
    public function testOneConnectionServesEveryCall(): void
    {
        $server = $this->server();
        $client = $this->client([], $server->url());
        $queue = 'mail';
        for ($i = 0; $i < 30; $i++) {
            $task = $client->dispatch($queue, ['n' => $i], ['key' => "k$i"]);
            $client->task($task->id);
            $client->task(PHP_INT_MAX);                          // 404
            $client->dispatchMany($queue, ['a', 'b']);
            $client->queues();
            $client->queue($queue);
            $client->cancel($task->id);
            $client->cancelKey($queue, 'nobody');                // 404
            try {
                $client->dispatch($queue, 'x', ['priority' => -1]); // 400
                $this->fail('priority -1 was accepted');
            } catch (DeferException) {
            }
        }

        $this->assertSame(1, $client->stats()['connections']['http']);
        $this->assertSame(1, $client->connectCount());
        $this->assertStopsCleanly($server);
    }

    public function testReconnectsAfterTheServerRestarts(): void
    {
        $server = $this->server();
        $client = $this->client([], $server->url());
        $task = $client->dispatch('mail', 'kept on disk');
        $this->assertSame(1, $client->connectCount());

        // The kept-alive connection is closed by the old process; a GET finds a new one.
        $this->assertSame([], Servers::restart($server));
        $this->assertSame(TaskState::Ready, $client->task($task->id)?->state);
        $this->assertSame(2, $client->connectCount());

        // A POST too: the closed connection is noticed before anything is written.
        $this->assertSame([], Servers::restart($server));
        $this->assertTrue($client->dispatch('mail', 'after the restart')->isNew());
        $this->assertSame(3, $client->connectCount());
        $this->assertSame(2, $client->queue('mail')?->ready);
        $this->assertSame(1, $client->stats()['connections']['http']);

        $this->assertStopsCleanly($server);
    }

    public function testAPostIsNotSentAgainWhenTheConnectionBreaksAfterIt(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(201, FakeHttpServer::taskJson(1))],
            ['close' => true],
            ['send' => FakeHttpServer::answer(201, FakeHttpServer::taskJson(2))],
        ]);
        $client = $this->client([], $fake->url());
        $this->assertSame(1, $client->dispatch('q', 'first')->id);

        $e = $this->expectThrown(ConnectionException::class, fn () => $client->dispatch('q', 'second'));
        $this->assertStringContainsString('may or may not have carried out the request', $e->getMessage());
        $this->assertNull($e->getStatus());
        $this->assertCount(2, $fake->requests(), 'the second dispatch was sent once');

        // The client is usable afterwards, on a new connection.
        $this->assertSame(2, $client->dispatch('q', 'third')->id);
        $this->assertSame([1, 1, 2], array_column($fake->requests(), 'connection'));
    }

    public function testAGetIsSentOnceMoreOnAFreshConnection(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1))],
            ['close' => true],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(2))],
        ]);
        $client = $this->client([], $fake->url());
        $this->assertSame(1, $client->task(1)?->id);
        $this->assertSame(2, $client->task(2)?->id);

        $requests = $fake->requests();
        $this->assertSame(
            ['GET /v1/tasks/1 HTTP/1.1', 'GET /v1/tasks/2 HTTP/1.1', 'GET /v1/tasks/2 HTTP/1.1'],
            array_column($requests, 'request'),
        );
        $this->assertSame([1, 1, 2], array_column($requests, 'connection'));
    }

    public function testARequestIsSentAgainOnlyOnce(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1))],
            ['close' => true],
            ['close' => true],
        ]);
        $client = $this->client([], $fake->url());
        $client->task(1);

        $this->expectThrown(ConnectionException::class, fn () => $client->task(2));
        $this->assertCount(3, $fake->requests());
    }

    public function testNothingIsSentAgainOnAFreshConnection(): void
    {
        $fake = $this->fake([['close' => true]]);
        $client = $this->client([], $fake->url());

        $e = $this->expectThrown(ConnectionException::class, fn () => $client->task(1));
        $this->assertStringContainsString('closed before an answer came', $e->getMessage());
        $this->assertCount(1, $fake->requests());
    }

    public function testTheRequestsTheClientWrites(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(201, FakeHttpServer::taskJson(1))],
            ['send' => FakeHttpServer::answer(200, '{"kicked":0}')],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1))],
        ]);
        $client = $this->client(['token' => 'secret'], $fake->url() . '/defer/');
        $client->dispatch('app/mail', ['to' => 'zoë@example.org'], ['delay' => 1.5, 'replace' => false, 'key' => 'k']);
        $client->kick('app/mail');
        $client->cancelKey('app/mail', 'room 301');

        [$post, $kick, $delete] = $fake->requests();
        $this->assertSame('POST /defer/v1/queues/app%2Fmail/tasks HTTP/1.1', $post['request']);
        $this->assertStringContainsString("\r\nHost: 127.0.0.1:{$fake->port}\r\n", $post['head']);
        $this->assertStringContainsString("\r\nAuthorization: Bearer secret\r\n", $post['head']);
        $this->assertStringContainsString("\r\nContent-Type: application/json\r\n", $post['head']);
        $this->assertStringEndsWith("\r\nContent-Length: " . strlen($post['body']), $post['head']);
        $this->assertSame(
            ['payload' => ['to' => 'zoë@example.org'], 'delay' => 1.5, 'key' => 'k', 'on_conflict' => 'keep'],
            json_decode($post['body'], true),
        );
        $this->assertSame('POST /defer/v1/queues/app%2Fmail/kick HTTP/1.1', $kick['request']);
        $this->assertStringEndsWith("\r\nContent-Length: 0", $kick['head']);
        $this->assertSame('', $kick['body']);
        $this->assertSame('DELETE /defer/v1/queues/app%2Fmail/keys/room%20301 HTTP/1.1', $delete['request']);
        $this->assertStringNotContainsString('Content-Length', $delete['head']);
    }

    public function testTimesOutWhenTheServerNeverAnswers(): void
    {
        // A listening socket nobody accepts from: the kernel completes the
        // connection and takes the request, and no answer ever comes.
        $silent = stream_socket_server('tcp://127.0.0.1:0');
        $this->assertNotFalse($silent);
        $client = $this->client(['timeout' => 0.3], 'http://' . stream_socket_get_name($silent, false));

        $e = $this->failIfHung(fn () => $this->expectThrown(TimeoutException::class, fn () => $client->dispatch('q', 'x')));
        $this->assertInstanceOf(ConnectionException::class, $e);
        $this->assertStringContainsString('no complete answer', $e->getMessage());
        $this->assertStringContainsString('within 0.3 s', $e->getMessage());
        fclose($silent);
    }

    public function testTimesOutWhenTheServerStopsReadingABody(): void
    {
        // Several MiB fill the kernel's buffers of a connection never read:
        // the write itself must give up at the deadline.
        $silent = stream_socket_server('tcp://127.0.0.1:0');
        $this->assertNotFalse($silent);
        $client = $this->client(['timeout' => 0.5, 'max_body' => 64 << 20], 'http://' . stream_socket_get_name($silent, false));

        $big = str_repeat('x', 16 << 20);
        $this->failIfHung(fn () => $this->expectThrown(TimeoutException::class, fn () => $client->dispatch('q', $big)));
        fclose($silent);
    }

    public function testTimesOutInTheMiddleOfAnAnswerAndNeverReadsItLater(): void
    {
        $fake = $this->fake([
            ['send' => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"id\":1,", 'hang' => true],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(2))],
        ]);
        $client = $this->client(['timeout' => 0.3], $fake->url());

        $this->failIfHung(fn () => $this->expectThrown(TimeoutException::class, fn () => $client->task(1)));
        $this->assertSame(2, $client->task(2)?->id);
        $this->assertSame([1, 2], array_column($fake->requests(), 'connection'));
    }

    public function testTimesOutWhenTheConnectCannotComplete(): void
    {
        // A backlog of 0 holds one connection the server never accepts;
        // the kernel drops the SYNs of the next ones.
        $context = stream_context_create(['socket' => ['backlog' => 0]]);
        $full = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr, STREAM_SERVER_BIND | STREAM_SERVER_LISTEN, $context);
        $this->assertNotFalse($full);
        $address = stream_socket_get_name($full, false);
        $holders = [];
        for ($i = 0; $i < 2; $i++) {
            $holder = @stream_socket_client('tcp://' . $address, $errno, $errstr, 0.2);
            if ($holder !== false) {
                $holders[] = $holder;
            }
        }
        $client = $this->client(['timeout' => 5, 'connect_timeout' => 0.2], 'http://' . $address);

        $e = $this->failIfHung(fn () => $this->expectThrown(TimeoutException::class, fn () => $client->queues()));
        $this->assertStringContainsString('could not connect', $e->getMessage());
        $this->assertStringContainsString('connect_timeout', $e->getMessage());
        $this->assertSame(0, $client->connectCount());
        fclose($full);
    }

    public function testARefusedConnectionIsAConnectionException(): void
    {
        $client = $this->client([], 'http://127.0.0.1:' . Process::freePort());

        $e = $this->expectThrown(ConnectionException::class, fn () => $client->queues());
        $this->assertStringContainsString('cannot connect', $e->getMessage());
        $this->assertStringContainsString('refused', $e->getMessage());
    }

    public function testAnAnswerWithConnectionCloseEndsTheConnection(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1), ['Connection' => 'close'])],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(2))],
        ]);
        $client = $this->client([], $fake->url());
        $client->task(1);
        $client->task(2);

        $this->assertSame([1, 2], array_column($fake->requests(), 'connection'));
    }

    public function testBytesNobodyAskedForEndTheConnection(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1)) . "HTTP/1.1 200 OK\r\n"],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(2))],
        ]);
        $client = $this->client([], $fake->url());

        $this->assertSame(1, $client->task(1)?->id);
        $this->assertSame(2, $client->task(2)?->id);
        $this->assertSame([1, 2], array_column($fake->requests(), 'connection'));
    }

    public function testOtherFramingsOfAnAnswer(): void
    {
        $body = FakeHttpServer::taskJson(3);
        $chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            . dechex(10) . "\r\n" . substr($body, 0, 10) . "\r\n"
            . dechex(strlen($body) - 10) . ";ext=1\r\n" . substr($body, 10) . "\r\n0\r\nX-Trailer: t\r\n\r\n";
        $fake = $this->fake([
            ['send' => "HTTP/1.1 100 Continue\r\n\r\n" . FakeHttpServer::answer(200, FakeHttpServer::taskJson(1))],
            ['send' => $chunked],
            ['send' => "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" . FakeHttpServer::taskJson(4), 'close' => true],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(5))],
        ]);
        $client = $this->client([], $fake->url());

        $this->assertSame(1, $client->task(1)?->id);
        $chunkedTask = $client->task(3);
        $this->assertSame(3, $chunkedTask?->id);
        $this->assertSame(['n' => 3], $chunkedTask->payload);
        $this->assertSame(4, $client->task(4)?->id);
        $this->assertSame(5, $client->task(5)?->id);
        // The chunked answer kept the connection; the HTTP/1.0 one ended it.
        $this->assertSame([1, 1, 1, 2], array_column($fake->requests(), 'connection'));
    }

    public function testAForkedChildUsesAConnectionOfItsOwn(): void
    {
        $fake = $this->fake([
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(1))],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(2))],
            ['send' => FakeHttpServer::answer(200, FakeHttpServer::taskJson(3))],
        ]);
        $client = $this->client([], $fake->url());
        $client->task(1);

        $result = Servers::dir() . '/child-' . bin2hex(random_bytes(4));
        $pid = pcntl_fork();
        if ($pid === 0) {
            // The child: one call, its outcome in a file, and out without
            // running phpunit's shutdown (SIGKILL skips it).
            try {
                file_put_contents($result, (string) $client->task(2)?->id);
            } catch (\Throwable $e) {
                file_put_contents($result, $e::class . ': ' . $e->getMessage());
            }
            posix_kill(posix_getpid(), SIGKILL);
        }
        $this->assertGreaterThan(0, $pid);
        pcntl_waitpid($pid, $status);
        $this->assertSame('2', file_get_contents($result));

        $this->assertSame(3, $client->task(3)?->id, 'the parent\'s connection still works');
        $this->assertSame([1, 2, 1], array_column($fake->requests(), 'connection'));
        $this->assertSame(1, $client->connectCount());
    }
}
