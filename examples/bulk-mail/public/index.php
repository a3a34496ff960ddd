<?php

/*
 * GET /: the newsletter page. A form queues 5,000 mails with one request
 * (send.php); below it, the progress, refreshed every second from
 * progress.php, which reads it from deferd's API.
 */

declare(strict_types=1);

require dirname(__DIR__) . '/bootstrap.php';

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES);
}

$notice = match (true) {
    isset($_GET['error']) => ['error', (string) $_GET['error']],
    isset($_GET['queued']) => ['ok', sprintf(
        'Queued %s mails in one request to deferd (%d ms).%s',
        number_format((int) $_GET['queued']),
        (int) ($_GET['ms'] ?? 0),
        (int) ($_GET['already'] ?? 0) > 0 ? sprintf(' %s were queued already and were not added again.', number_format((int) $_GET['already'])) : '',
    )],
    default => null,
};
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Bulk mail - defer example</title>
<style>
    body { font: 16px/1.4 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
    .notice { padding: .6rem .8rem; border-radius: 4px; background: #e7f5e9; }
    .notice.error { background: #fbe4e4; }
    progress { width: 100%; height: 1.4rem; }
    table { border-collapse: collapse; margin: 1rem 0; }
    td, th { padding: .2rem .8rem .2rem 0; text-align: left; vertical-align: top; }
    td.n { text-align: right; font-variant-numeric: tabular-nums; }
    .muted { color: #666; font-size: .9rem; }
    code { font-size: .9rem; }
</style>
</head>
<body>
<h1>Newsletter</h1>

<?php if ($notice !== null): ?>
<p class="notice <?= h($notice[0]) ?>"><?= h($notice[1]) ?></p>
<?php endif ?>

<form method="post" action="/send.php">
    <p><label>Subject <input name="subject" size="40" required maxlength="200" value="The November newsletter"></label></p>
    <p><button>Send to <?= number_format(SUBSCRIBERS) ?> subscribers</button>
       <button name="undeliverable" value="1">Send one undeliverable mail</button></p>
    <p class="muted">The first button queues <?= number_format(SUBSCRIBERS) ?> tasks with one request to deferd.
       deferd pushes them, at the rate its config file allows, into php-fpm, where
       <code>push/send-mail.php</code> writes each mail into the outbox.</p>
</form>

<h2>Progress</h2>
<progress id="bar" value="0" max="1"></progress>
<table>
    <tr><th>queued in all</th><td class="n" data-field="enqueued">-</td></tr>
    <tr><th>waiting (ready)</th><td class="n" data-field="ready">-</td></tr>
    <tr><th>being sent (reserved)</th><td class="n" data-field="reserved">-</td></tr>
    <tr><th>waiting for a retry (delayed)</th><td class="n" data-field="delayed">-</td></tr>
    <tr><th>sent (done)</th><td class="n" data-field="done">-</td></tr>
    <tr><th>failed</th><td class="n" data-field="failed">-</td></tr>
    <tr><th>sent per second (1-minute average)</th><td class="n" data-field="done_per_second">-</td></tr>
    <tr><th>files in the outbox</th><td class="n" data-field="outbox">-</td></tr>
</table>
<div id="failures"></div>
<p class="muted" id="status">Reading the progress from deferd...</p>

<script>
// Reads progress.php every second and fills in the numbers.
const bar = document.getElementById('bar');
const statusLine = document.getElementById('status');
const failures = document.getElementById('failures');

function show(p) {
    for (const cell of document.querySelectorAll('[data-field]')) {
        const v = p[cell.dataset.field];
        cell.textContent = cell.dataset.field === 'done_per_second' ? v.toFixed(1) : v.toLocaleString('en');
    }
    bar.max = Math.max(p.enqueued, 1);
    bar.value = p.done + p.failed;
    failures.replaceChildren();
    if (p.failures.length > 0) {
        const title = document.createElement('h3');
        title.textContent = 'Failed tasks, with the reason deferd kept';
        const list = document.createElement('ul');
        for (const f of p.failures) {
            const item = document.createElement('li');
            item.textContent = `task ${f.id} to ${f.to}, ${f.attempts} attempt(s): ${f.last_error}`;
            list.append(item);
        }
        failures.append(title, list);
    }
    statusLine.textContent = 'Updated ' + new Date().toLocaleTimeString();
}

async function refresh() {
    try {
        const answer = await fetch('/progress.php', {cache: 'no-store'});
        const p = await answer.json();
        if (!answer.ok) {
            throw new Error(p.error);
        }
        show(p);
    } catch (e) {
        statusLine.textContent = 'Cannot read the progress: ' + e.message;
    }
    setTimeout(refresh, 1000);
}
refresh();
</script>
</body>
</html>
