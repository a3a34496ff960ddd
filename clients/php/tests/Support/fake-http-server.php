<?php

/*
 * A scripted HTTP server, run as a child process by FakeHttpServer: it plays
 * what a real deferd cannot be made to do on demand (answer garbage, close a
 * connection at a chosen moment, stop half way through an answer, frame an
 * answer differently), and logs every request it receives, so that a test
 * can count what the client sent.
 *
 *     php fake-http-server.php PLAN.json LOG.jsonl
 *
 * It listens on a free loopback port and prints it as the first line of
 * stdout. Each complete request consumes the next step of the plan:
 *   {"send": "raw bytes"}            write them, keep the connection
 *   {"send": "...", "close": true}   write them, then close
 *   {"close": true}                  close without answering
 *   {"hang": true}                   never answer (after "send", if given)
 * Past the plan's end, requests get a 500 naming the fact. The server exits
 * when its stdin closes (the test is done with it).
 */

declare(strict_types=1);

[$self, $planFile, $logFile] = $argv + [null, null, null];
$plan = json_decode((string) file_get_contents((string) $planFile), true, 512, JSON_THROW_ON_ERROR);
$log = fopen((string) $logFile, 'a');

$server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
if ($server === false) {
    fwrite(STDERR, "cannot listen: $errstr\n");
    exit(1);
}
$name = (string) stream_socket_get_name($server, false);
echo substr($name, strrpos($name, ':') + 1), "\n";
fflush(STDOUT);

/** @var array<int, array{socket: resource, in: string, conn: int, hung: bool}> $clients */
$clients = [];
$connections = 0;
$step = 0;

while (true) {
    $read = [$server, STDIN];
    foreach ($clients as $c) {
        $read[] = $c['socket'];
    }
    $write = null;
    $except = null;
    if (stream_select($read, $write, $except, null) === false) {
        continue;
    }
    foreach ($read as $socket) {
        if ($socket === STDIN) {
            if (fread(STDIN, 1024) === '' && feof(STDIN)) {
                exit(0);
            }
            continue;
        }
        if ($socket === $server) {
            $accepted = stream_socket_accept($server, 0);
            if ($accepted !== false) {
                $connections++;
                $clients[(int) $accepted] = ['socket' => $accepted, 'in' => '', 'conn' => $connections, 'hung' => false];
            }
            continue;
        }
        $id = (int) $socket;
        $chunk = fread($socket, 65536);
        if ($chunk === '' || $chunk === false) {
            if (feof($socket)) {
                fclose($socket);
                unset($clients[$id]);
            }
            continue;
        }
        $clients[$id]['in'] .= $chunk;
        // Every complete request in the buffer, in order.
        while (isset($clients[$id]) && !$clients[$id]['hung']
            && ($end = strpos($clients[$id]['in'], "\r\n\r\n")) !== false) {
            $head = substr($clients[$id]['in'], 0, $end);
            $length = preg_match('/\r\ncontent-length: *(\d+)/i', $head, $m) === 1 ? (int) $m[1] : 0;
            if (strlen($clients[$id]['in']) < $end + 4 + $length) {
                break;
            }
            $body = substr($clients[$id]['in'], $end + 4, $length);
            $clients[$id]['in'] = (string) substr($clients[$id]['in'], $end + 4 + $length);
            [$requestLine] = explode("\r\n", $head, 2);
            fwrite($log, json_encode([
                'connection' => $clients[$id]['conn'],
                'request' => $requestLine,
                'head' => $head,
                'body' => $body,
            ]) . "\n");
            fflush($log);

            $outOfPlan = '{"error":{"code":"internal","message":"the fake server\'s plan ran out"}}';
            $action = $plan[$step++] ?? ['send' => "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                . 'Content-Length: ' . strlen($outOfPlan) . "\r\n\r\n" . $outOfPlan];
            if (isset($action['send'])) {
                fwrite($socket, $action['send']);
            }
            if (!empty($action['hang'])) {
                $clients[$id]['hung'] = true;
            } elseif (!empty($action['close'])) {
                fclose($socket);
                unset($clients[$id]);
            }
        }
    }
}
