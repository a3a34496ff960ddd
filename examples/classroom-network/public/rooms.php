<?php

/*
 * GET /rooms.php: the rooms and what happened, as an HTML fragment. The page
 * includes it, and its script fetches it again every second. The restore
 * shown for a room is deferd's own task (the queue's delayed tasks, by key),
 * so the page shows what will really happen, not what it thinks it did.
 */

declare(strict_types=1);

require_once dirname(__DIR__) . '/bootstrap.php';

use Defer\Client;
use Defer\Exception\DeferException;
use Defer\TaskState;

$state = (new Rooms(setting('ROOMS_FILE'), ROOMS))->read();
$restores = [];
$problem = null;
try {
    foreach ((new Client(setting('DEFER_URL')))->tasks(RESTORE_QUEUE, TaskState::Delayed) as $task) {
        $restores[$task->key] = $task;
    }
} catch (DeferException $e) {
    $problem = 'Cannot read the scheduled restores from deferd: ' . $e->getMessage();
}
$zone = new DateTimeZone(date_default_timezone_get());
?>
<?php if ($problem !== null): ?>
<p class="notice error"><?= h($problem) ?></p>
<?php endif ?>
<table>
    <tr><th>Room</th><th>Network</th><th>Restore scheduled in deferd</th><th></th></tr>
<?php foreach ($state['rooms'] as $room => $r):
    $room = (string) $room;
    $restore = $restores[restore_key($room)] ?? null;
    $runAt = $restore?->runAt;
    ?>
    <tr data-room="<?= h($room) ?>" data-state="<?= $r['closed'] ? 'closed' : 'open' ?>"<?php if ($restore !== null): ?> data-restore-task="<?= $restore->id ?>" data-restore-at="<?= h($runAt?->format('Y-m-d\TH:i:s.v\Z') ?? '') ?>"<?php endif ?>>
        <td><?= h($room) ?></td>
        <td class="<?= $r['closed'] ? 'closed' : 'open' ?>"><?= $r['closed'] ? 'closed' : 'open' ?></td>
        <td><?php if ($restore !== null && $runAt !== null): ?>
            task <?= $restore->id ?> at <?= $runAt->setTimezone($zone)->format('H:i:s') ?>
            (in <?= max(0, $runAt->getTimestamp() - time()) ?> s)
        <?php else: ?>-<?php endif ?></td>
        <td>
            <button form="close" name="room" value="<?= h($room) ?>"><?= $r['closed'] ? 'Close again (move the restore)' : 'Close the network' ?></button>
            <button form="open" name="room" value="<?= h($room) ?>"<?= $r['closed'] ? '' : ' disabled' ?>>Open now</button>
        </td>
    </tr>
<?php endforeach ?>
</table>

<h2>What happened</h2>
<?php if ($state['events'] === []): ?>
<p class="muted">Nothing yet.</p>
<?php else: ?>
<ul>
<?php foreach ($state['events'] as $event): ?>
    <li><?= date('H:i:s', $event['at']) ?> - <?= h($event['text']) ?></li>
<?php endforeach ?>
</ul>
<?php endif ?>
