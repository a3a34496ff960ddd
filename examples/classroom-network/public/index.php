<?php

/*
 * GET /: the teacher's page. Each room can be closed for a lesson - its
 * network comes back by itself when the lesson ends, through a restore task
 * that deferd runs then - or opened at once. The rooms (rooms.php) are
 * fetched again every second.
 */

declare(strict_types=1);

require_once dirname(__DIR__) . '/bootstrap.php';

$lesson = (int) setting('LESSON_SECONDS');
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Classroom network - defer example</title>
<style>
    body { font: 16px/1.4 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
    .notice { padding: .6rem .8rem; border-radius: 4px; background: #fbe4e4; }
    table { border-collapse: collapse; margin: 1rem 0; }
    td, th { padding: .3rem 1rem .3rem 0; text-align: left; }
    td.closed { color: #b00; font-weight: bold; }
    td.open { color: #080; }
    .muted { color: #666; font-size: .9rem; }
    input[type=number] { width: 6rem; }
</style>
</head>
<body>
<h1>Classroom network</h1>

<?php if (isset($_GET['error'])): ?>
<p class="notice"><?= h((string) $_GET['error']) ?></p>
<?php endif ?>

<form id="close" method="post" action="/action.php">
    <input type="hidden" name="action" value="close">
    <label>A lesson lasts <input type="number" name="seconds" min="1" max="86400" value="<?= $lesson ?>"> seconds.</label>
</form>
<form id="open" method="post" action="/action.php">
    <input type="hidden" name="action" value="open">
</form>
<p class="muted">Closing a room schedules a restore task in deferd for the end of the lesson, keyed by the
   room: closing it again moves that task, "Open now" cancels it. When it is due, deferd pushes it
   into php-fpm, where <code>push/restore.php</code> opens the room again.</p>

<div id="rooms"><?php require __DIR__ . '/rooms.php'; ?></div>

<script>
// Fetches the rooms again every second.
const rooms = document.getElementById('rooms');
async function refresh() {
    try {
        const answer = await fetch('/rooms.php', {cache: 'no-store'});
        if (answer.ok) {
            rooms.innerHTML = await answer.text();
        }
    } catch (e) {
        // The server is gone for a moment: the page stays as it was until the next try.
    } finally {
        setTimeout(refresh, 1000);
    }
}
setTimeout(refresh, 1000);
</script>
</body>
</html>
